"""The store package's public surface is exactly the hand-picked set."""

from __future__ import annotations

import processors.store


def test_all_is_the_public_surface() -> None:
    public = {name for name in vars(processors.store) if not name.startswith("_")}
    modules = {"base", "changelog", "errors", "memory", "options", "recovery", "rocksdb"}
    modules |= {"keys", "timers", "transaction"}
    assert public - modules == set(processors.store.__all__)
    assert all(hasattr(processors.store, name) for name in processors.store.__all__)
