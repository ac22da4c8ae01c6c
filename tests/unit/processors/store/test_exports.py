"""The store package's public surface is exactly the hand-picked set."""

from __future__ import annotations

import processors.store
from tests.public_surface import public_names


def test_all_is_the_public_surface() -> None:
    assert public_names(processors.store) == set(processors.store.__all__)
    assert all(hasattr(processors.store, name) for name in processors.store.__all__)
