"""The engine's public surface is exactly its ``__all__``: a leaked name fails too."""

import types

import sagas.engine


def public_names() -> set[str]:
    """What the package really exposes: every public name that is not a submodule."""
    return {
        name
        for name, value in vars(sagas.engine).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_all_is_exactly_what_the_package_exposes() -> None:
    assert sorted(sagas.engine.__all__) == sorted(public_names())
    assert len(set(sagas.engine.__all__)) == len(sagas.engine.__all__)


def test_every_exported_member_is_documented() -> None:
    for name in sagas.engine.__all__:
        assert getattr(sagas.engine, name).__doc__, name
