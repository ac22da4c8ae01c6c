"""A secondary reader sees every write the writer made before the read, and keeps
reading across the writer's flushes and its closing, including a flush of values it
never read from the write-ahead log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import rocksdict

from processors.store.errors import StoreError
from processors.store.rocksdb import RocksDBPartitionStore
from processors.store.secondary import SecondaryReader


def _reader(primary: Path, scratch: Path) -> SecondaryReader:
    return SecondaryReader(str(primary), scratch, 0, cache=rocksdict.Cache(1 << 20))


def test_every_read_sees_the_writes_before_it(tmp_path: Path) -> None:
    writer = RocksDBPartitionStore(tmp_path / "p0")
    writer.write({b"a": b"1"}, 1)
    reader = _reader(tmp_path / "p0", tmp_path / "scratch")
    try:
        view = reader.concurrent_reader()
        assert view.get(b"a") == b"1"
        writer.write({b"a": b"2", b"b": b"3"}, 2)
        assert view.get(b"b") is None, "a reader already handed out reads as it was"
        view = reader.concurrent_reader()
        assert view.get(b"a") == b"2"
        assert list(view.iter_range(b"a", b"c")) == [(b"a", b"2"), (b"b", b"3")]
        writer.write({b"a": None}, 3)
        writer.close()  # flushes the memtables to table files
        assert reader.concurrent_reader().get(b"a") is None
        assert reader.concurrent_reader().get(b"b") == b"3"
    finally:
        reader.close()
    assert not (tmp_path / "scratch").exists()


def test_a_fresh_reader_sees_everything_written_before_it(tmp_path: Path) -> None:
    writer = RocksDBPartitionStore(tmp_path / "p0")
    try:
        writer.write({f"k{i:04d}".encode(): b"v" for i in range(1000)}, 1)
        reader = _reader(tmp_path / "p0", tmp_path / "scratch")
        try:
            assert len(list(reader.concurrent_reader().iter_range(b"k"))) == 1000
        finally:
            reader.close()
    finally:
        writer.close()


def test_a_flush_of_values_the_reader_never_replayed_is_seen(tmp_path: Path) -> None:
    # The reader replays a=1 from the log; the writer puts a=2 and flushes before the
    # reader reads that far, then writes nothing more: a plain catch-up keeps answering
    # a=1 from its memtable for as long as nothing more is written.
    writer = RocksDBPartitionStore(tmp_path / "p0")
    reader = _reader(tmp_path / "p0", tmp_path / "scratch")
    try:
        writer.write({b"a": b"1", b"b": b"1"}, 1)
        assert reader.concurrent_reader().get(b"a") == b"1"
        writer.write({b"a": b"2", b"b": None}, 2)
        writer.flush()
        view = reader.concurrent_reader()
        assert view.get(b"a") == b"2"
        assert view.get(b"b") is None
        assert reader.reopened == 1
        writer.write({b"a": b"3"}, 3)
        assert reader.concurrent_reader().get(b"a") == b"3"
        assert reader.reopened == 1, "a write in the same log file needs only a catch-up"
    finally:
        reader.close()
        writer.close()


def _age_directory(path: Path) -> None:
    """Set the directory's modification time a second back, as if its last change were
    long past, so that the reader keeps its next listing while the time stands."""
    past = time.time_ns() - 1_000_000_000
    os.utime(path, ns=(past, past))


def test_a_kept_listing_still_sees_a_flush_and_every_write(tmp_path: Path) -> None:
    writer = RocksDBPartitionStore(tmp_path / "p0")
    reader = _reader(tmp_path / "p0", tmp_path / "scratch")
    try:
        writer.write({b"a": b"1", b"b": b"1"}, 1)
        _age_directory(tmp_path / "p0")
        assert reader.concurrent_reader().get(b"a") == b"1"
        writer.write({b"a": b"2"}, 2)  # into the same log file: the directory stays
        assert reader.concurrent_reader().get(b"a") == b"2"
        assert reader.reopened == 0
        writer.write({b"a": b"3", b"b": None}, 3)
        writer.flush()  # a new log file, the old one gone: the directory changes
        view = reader.concurrent_reader()
        assert (view.get(b"a"), view.get(b"b")) == (b"3", None)
        assert reader.reopened == 1
    finally:
        reader.close()
        writer.close()


def test_a_missing_database_is_a_store_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read the store's files") as raised:
        _reader(tmp_path / "nothing-here", tmp_path / "scratch")
    assert raised.value.path == str(tmp_path / "nothing-here")
