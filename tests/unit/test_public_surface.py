from __future__ import annotations

import types
from typing import Any

from tests.public_surface import public_names


def test_a_leaked_import_counts_and_submodules_and_private_names_do_not() -> None:
    package = types.ModuleType("shop")
    package.Order = type("Order", (), {})
    package.Any = Any  # imported for the package's own annotations, then not hidden
    package.payments = types.ModuleType("shop.payments")
    package._cache = {}
    assert public_names(package) == {"Order", "Any"}
