"""What a package really exports, to hold its ``__all__`` to it."""

from __future__ import annotations

from types import ModuleType


def public_names(package: ModuleType) -> set[str]:
    """The names a package binds that do not start with ``_``, its submodules left out.

    A name imported into the package for its own use and not listed in ``__all__`` shows
    up here, so comparing the two catches a name that leaks in as well as one that is
    listed and missing.
    """
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
