"""Staged writes over each backend: reads see them, the store only after commit."""

from __future__ import annotations

import pytest

from processors.store import InvalidStoreDataError, Store, StoreError, StoreTransaction


def test_reads_see_staged_writes_before_the_store(store: Store) -> None:
    part = store.partition(0)
    part.write({b"a": b"stored", b"b": b"stored"})
    txn = StoreTransaction(part)
    txn.set(b"a", b"staged")
    txn.delete(b"b")
    txn.set(b"c", b"new")
    assert txn.get(b"a") == b"staged"
    assert txn.get(b"b") is None
    assert txn.get(b"c") == b"new"
    assert txn.get_many([b"c", b"b", b"a", b"z"]) == [b"new", None, b"staged", None]
    assert part.get(b"a") == b"stored"
    assert part.get(b"c") is None


def test_changes_hold_the_last_write_of_each_key(store: Store) -> None:
    txn = StoreTransaction(store.partition(0))
    txn.set(b"a", b"1")
    txn.set(b"a", b"2")
    txn.set(b"b", b"1")
    txn.delete(b"b")
    assert dict(txn.changes()) == {b"a": b"2", b"b": None}
    assert len(txn) == 2
    with pytest.raises(TypeError):
        txn.changes()[b"x"] = b"y"  # type: ignore[index]


def test_commit_writes_changes_and_offset_at_once(store: Store) -> None:
    part = store.partition(0)
    part.write({b"gone": b"x"}, 3)
    txn = StoreTransaction(part)
    txn.set(b"a", b"1")
    txn.delete(b"gone")
    txn.commit(9)
    assert part.get(b"a") == b"1"
    assert part.get(b"gone") is None
    assert part.changelog_offset() == 9
    assert txn.done


def test_transaction_is_used_once(store: Store) -> None:
    txn = StoreTransaction(store.partition(0))
    txn.commit(None)
    with pytest.raises(StoreError, match="already committed or discarded"):
        txn.set(b"a", b"1")
    with pytest.raises(StoreError, match="already committed or discarded"):
        txn.commit(1)


def test_discard_leaves_the_store_alone(store: Store) -> None:
    part = store.partition(0)
    txn = StoreTransaction(part)
    txn.set(b"a", b"1")
    txn.discard()
    assert part.get(b"a") is None
    assert dict(txn.changes()) == {}
    with pytest.raises(StoreError):
        txn.delete(b"a")


def test_staged_writes_are_validated_at_once(store: Store) -> None:
    txn = StoreTransaction(store.partition(0))
    with pytest.raises(InvalidStoreDataError):
        txn.set("a", b"1")  # type: ignore[arg-type]
    with pytest.raises(InvalidStoreDataError):
        txn.set(b"a", "1")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="use delete"):
        txn.set(b"a", None)  # type: ignore[arg-type]
    with pytest.raises(InvalidStoreDataError):
        txn.delete(1)  # type: ignore[arg-type]
    assert len(txn) == 0


def test_iter_range_merges_staged_over_stored(store: Store) -> None:
    part = store.partition(0)
    part.write({b"a": b"s", b"c": b"s", b"e": b"s", b"g": b"s"})
    txn = StoreTransaction(part)
    txn.set(b"b", b"t")
    txn.set(b"c", b"t")
    txn.delete(b"e")
    txn.set(b"h", b"t")
    txn.delete(b"zz")
    assert list(txn.iter_range(b"")) == [
        (b"a", b"s"),
        (b"b", b"t"),
        (b"c", b"t"),
        (b"g", b"s"),
        (b"h", b"t"),
    ]
    assert list(txn.iter_range(b"b", b"g")) == [(b"b", b"t"), (b"c", b"t")]
    assert list(txn.iter_range(b"c", limit=2)) == [(b"c", b"t"), (b"g", b"s")]
    assert list(txn.iter_range(b"d", b"f")) == []
    assert list(txn.iter_range(b"a", limit=0)) == []


def test_iter_range_without_staged_keys_in_range_reads_the_store(store: Store) -> None:
    part = store.partition(0)
    part.write({b"a": b"1", b"b": b"2", b"c": b"3"})
    txn = StoreTransaction(part)
    txn.set(b"z", b"9")
    assert list(txn.iter_range(b"a", b"c", limit=1)) == [(b"a", b"1")]
