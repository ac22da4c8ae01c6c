"""RocksDB options: frozen, convertible, and the WAL switch reaches the write options."""

from __future__ import annotations

import dataclasses
from typing import cast

import pytest
import rocksdict

from processors.store import RocksDBOptions


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RocksDBOptions().disable_wal = True  # type: ignore[misc]


@pytest.mark.parametrize("compression", ["none", "snappy", "lz4", "zstd"])
def test_to_options_builds_rocksdict_options(compression: str) -> None:
    options = RocksDBOptions(compression=compression)  # type: ignore[arg-type]
    assert isinstance(options.to_options(), rocksdict.Options)
    assert isinstance(options.to_options(rocksdict.Cache(1024 * 1024)), rocksdict.Options)


@pytest.mark.parametrize("disable_wal", [True, False])
def test_write_options_follow_the_wal_switch(disable_wal: bool) -> None:
    write_options = RocksDBOptions(disable_wal=disable_wal).write_options()
    # rocksdict's stubs call disable_wal a method; at run time it is a bool property.
    assert cast(object, write_options.disable_wal) is disable_wal
    assert write_options.sync is False
