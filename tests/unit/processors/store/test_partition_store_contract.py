"""The contract every partition store backend keeps, run against each of them."""

from __future__ import annotations

from typing import Any

import pytest

from processors.store import (
    ChangelogOffsetError,
    InvalidStoreDataError,
    RocksDBStore,
    Store,
    StoreClosedError,
    StoreError,
)


def test_missing_key_reads_none(store: Store) -> None:
    assert store.partition(0).get(b"absent") is None


def test_write_sets_and_deletes(store: Store) -> None:
    part = store.partition(0)
    part.write({b"a": b"1", b"b": b"2"})
    part.write({b"a": None, b"b": b"3"})
    assert part.get(b"a") is None
    assert part.get(b"b") == b"3"


def test_delete_of_missing_key_is_harmless(store: Store) -> None:
    part = store.partition(0)
    part.write({b"ghost": None, b"x": b"1"})
    assert part.get(b"ghost") is None
    assert list(part.iter_range(b"")) == [(b"x", b"1")]


def test_empty_value_is_kept_apart_from_absent(store: Store) -> None:
    part = store.partition(0)
    part.write({b"empty": b""})
    assert part.get(b"empty") == b""
    assert list(part.iter_range(b"")) == [(b"empty", b"")]


def test_get_many_keeps_order_and_reports_missing(store: Store) -> None:
    part = store.partition(0)
    part.write({b"a": b"1", b"c": b"3"})
    assert part.get_many([b"c", b"b", b"a"]) == [b"3", None, b"1"]
    assert part.get_many([]) == []


def test_iter_range_is_ordered_by_bytes_and_half_open(store: Store) -> None:
    part = store.partition(0)
    keys = [b"\xff", b"a\x00", b"a", b"b", b"\x00", b"ab", b"c"]
    part.write({key: key * 2 for key in keys})
    assert [k for k, _ in part.iter_range(b"")] == sorted(keys)
    assert list(part.iter_range(b"a", b"b")) == [
        (b"a", b"aa"),
        (b"a\x00", b"a\x00a\x00"),
        (b"ab", b"abab"),
    ]
    assert [k for k, _ in part.iter_range(b"b")] == [b"b", b"c", b"\xff"]
    assert [k for k, _ in part.iter_range(b"a", b"c", limit=2)] == [b"a", b"a\x00"]
    assert list(part.iter_range(b"a", limit=0)) == []
    assert list(part.iter_range(b"c", b"a")) == []


def test_iter_range_sees_the_store_as_it_was_when_called(store: Store) -> None:
    part = store.partition(0)
    part.write({b"k1": b"old", b"k2": b"old"})
    pairs = part.iter_range(b"k")
    part.write({b"k1": b"new", b"k2": None, b"k3": b"new"})
    assert list(pairs) == [(b"k1", b"old"), (b"k2", b"old")]


def test_changelog_offset_starts_empty_and_moves_with_writes(store: Store) -> None:
    part = store.partition(0)
    assert part.changelog_offset() is None
    part.write({b"a": b"1"}, 10)
    assert part.changelog_offset() == 10
    part.write({b"b": b"2"})
    assert part.changelog_offset() == 10
    part.write({}, 12)
    assert part.changelog_offset() == 12
    part.write({b"c": b"3"}, 12)
    assert part.changelog_offset() == 12


def test_offset_below_stored_is_refused_and_nothing_is_written(store: Store) -> None:
    part = store.partition(0)
    part.write({b"a": b"1"}, 10)
    with pytest.raises(ChangelogOffsetError) as raised:
        part.write({b"a": b"2"}, 9)
    assert raised.value.stored_offset == 10
    assert raised.value.offset == 9
    assert part.get(b"a") == b"1"
    assert part.changelog_offset() == 10


@pytest.mark.parametrize("offset", [-1, 1.5, True])
def test_offset_must_be_a_non_negative_int(store: Store, offset: Any) -> None:
    with pytest.raises(ChangelogOffsetError, match="non-negative int"):
        store.partition(0).write({b"a": b"1"}, offset)


@pytest.mark.parametrize(
    "changes",
    [{"str-key": b"v"}, {b"k": "str-value"}, {b"k": 1}, {memoryview(b"k"): b"v"}],
)
def test_write_refuses_non_bytes_and_applies_nothing(store: Store, changes: Any) -> None:
    part = store.partition(0)
    with pytest.raises(InvalidStoreDataError, match="must be bytes"):
        part.write({b"first": b"ok", **changes}, 5)
    assert part.get(b"first") is None
    assert part.changelog_offset() is None


def test_reads_refuse_non_bytes_keys(store: Store) -> None:
    part = store.partition(0)
    with pytest.raises(InvalidStoreDataError):
        part.get("a")  # type: ignore[arg-type]
    with pytest.raises(InvalidStoreDataError):
        part.get_many([b"a", "b"])  # type: ignore[list-item]
    with pytest.raises(InvalidStoreDataError):
        list(part.iter_range("a"))  # type: ignore[arg-type]
    with pytest.raises(InvalidStoreDataError):
        list(part.iter_range(b"a", limit=-1))


def test_reopen_keeps_data_and_offset(store: Store) -> None:
    part = store.partition(3)
    part.write({b"a": b"1", b"b": b"2"}, 41)
    part.write({b"b": None}, 42)
    store.close_partition(3)
    assert part.closed
    assert store.open_partitions() == frozenset()
    reopened = store.partition(3)
    assert reopened.get(b"a") == b"1"
    assert reopened.get(b"b") is None
    assert reopened.changelog_offset() == 42


def test_partitions_are_separate(store: Store) -> None:
    store.partition(0).write({b"k": b"zero"}, 1)
    store.partition(1).write({b"k": b"one"}, 7)
    assert store.partition(0).get(b"k") == b"zero"
    assert store.partition(1).changelog_offset() == 7
    assert store.open_partitions() == frozenset({0, 1})


def test_partition_returns_the_open_store(store: Store) -> None:
    assert store.partition(2) is store.partition(2)


def test_partition_number_must_be_non_negative_int(store: Store) -> None:
    with pytest.raises(InvalidStoreDataError, match="partition"):
        store.partition(-1)


def test_destroy_partition_forgets_everything(store: Store) -> None:
    store.partition(0).write({b"a": b"1"}, 5)
    store.destroy_partition(0)
    fresh = store.partition(0)
    assert fresh.get(b"a") is None
    assert fresh.changelog_offset() is None


def test_destroy_of_a_closed_partition(store: Store) -> None:
    store.partition(0).write({b"a": b"1"}, 5)
    store.close_partition(0)
    store.destroy_partition(0)
    assert store.partition(0).get(b"a") is None


def test_clear_empties_data_and_offset_but_stays_open(store: Store) -> None:
    part = store.partition(0)
    part.write({b"\x00": b"0", b"a": b"1", b"\xff\xff": b"2"}, 5)
    part.clear()
    assert list(part.iter_range(b"")) == []
    assert part.changelog_offset() is None
    part.write({b"b": b"2"}, 1)
    assert part.get(b"b") == b"2"
    store.close_partition(0)
    assert list(store.partition(0).iter_range(b"")) == [(b"b", b"2")]


def test_clear_of_an_empty_store(store: Store) -> None:
    part = store.partition(0)
    part.clear()
    assert part.changelog_offset() is None


def test_closed_store_refuses_use_and_closes_twice(store: Store) -> None:
    part = store.partition(0)
    part.close()
    part.close()
    with pytest.raises(StoreClosedError):
        part.get(b"a")
    with pytest.raises(StoreClosedError):
        part.write({b"a": b"1"})
    with pytest.raises(StoreClosedError):
        part.changelog_offset()


def test_closed_partition_is_reopened_by_partition(store: Store) -> None:
    part = store.partition(0)
    part.write({b"a": b"1"})
    part.close()
    assert store.partition(0).get(b"a") == b"1"


def test_rocksdb_partitions_live_under_group_and_topic(tmp_path: Any) -> None:
    manager = RocksDBStore(tmp_path, "orders", "order.events")
    try:
        manager.partition(4).write({b"a": b"1"}, 0)
        assert manager.partition_path(4) == tmp_path / "orders" / "order.events-4"
        assert manager.partition_path(4).is_dir()
        manager.destroy_partition(4)
        assert not manager.partition_path(4).exists()
    finally:
        manager.close()


@pytest.mark.parametrize("group", ["", ".", "..", "a/b", "a\0b"])
def test_rocksdb_store_refuses_names_that_escape_the_state_dir(tmp_path: Any, group: str) -> None:
    with pytest.raises(StoreError, match="cannot name a state directory"):
        RocksDBStore(tmp_path, group, "topic")
