"""Property: after any sequence of atomic writes, a store equals a dict that took the same."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.store import PartitionStore, StoreTransaction

from .conftest import make_store

keys = st.binary(max_size=3)
batches = st.lists(
    st.dictionaries(keys, st.none() | st.binary(max_size=4), max_size=8), max_size=12
)


def _check_equal(part: PartitionStore, model: dict[bytes, bytes], offset: int | None) -> None:
    assert list(part.iter_range(b"")) == sorted(model.items())
    assert part.changelog_offset() == offset
    probe = [*sorted(model)[:5], b"\xff\xff\xff\xff"]
    assert part.get_many(probe) == [model.get(key) for key in probe]


def _run(backend: str, writes: list[dict[bytes, bytes | None]], via_txn: bool) -> None:
    with tempfile.TemporaryDirectory() as state_dir:
        manager = make_store(backend, Path(state_dir))
        part = manager.partition(0)
        model: dict[bytes, bytes] = {}
        offset: int | None = None
        for number, changes in enumerate(writes):
            offset = number * 2
            if via_txn:
                txn = StoreTransaction(part)
                for key, value in changes.items():
                    if value is None:
                        txn.delete(key)
                    else:
                        txn.set(key, value)
                txn.commit(offset)
            else:
                part.write(changes, offset)
            for key, value in changes.items():
                if value is None:
                    model.pop(key, None)
                else:
                    model[key] = value
            _check_equal(part, model, offset)
        manager.close_partition(0)
        _check_equal(manager.partition(0), model, offset)
        manager.close()


@settings(max_examples=60, deadline=None)
@given(writes=batches, via_txn=st.booleans())
def test_memory_store_equals_dict_model(
    writes: list[dict[bytes, bytes | None]], via_txn: bool
) -> None:
    _run("memory", writes, via_txn)


# Each example opens and reopens a database (tens of milliseconds): fewer examples.
@settings(max_examples=25, deadline=None)
@given(writes=batches, via_txn=st.booleans())
def test_rocksdb_store_equals_dict_model(
    writes: list[dict[bytes, bytes | None]], via_txn: bool
) -> None:
    _run("rocksdb", writes, via_txn)


@settings(max_examples=60, deadline=None)
@given(
    stored=st.dictionaries(keys, st.binary(max_size=2), max_size=8),
    staged=st.dictionaries(keys, st.none() | st.binary(max_size=2), max_size=8),
    start=keys,
    stop=st.none() | keys,
    limit=st.none() | st.integers(min_value=0, max_value=6),
)
def test_transaction_range_equals_merged_model(
    stored: dict[bytes, bytes],
    staged: dict[bytes, bytes | None],
    start: bytes,
    stop: bytes | None,
    limit: int | None,
) -> None:
    with tempfile.TemporaryDirectory() as state_dir:
        manager = make_store("memory", Path(state_dir))
        part = manager.partition(0)
        part.write(stored)
        txn = StoreTransaction(part)
        for key, value in staged.items():
            if value is None:
                txn.delete(key)
            else:
                txn.set(key, value)
        merged = {**stored, **staged}
        expected = sorted(
            (key, value)
            for key, value in merged.items()
            if value is not None and start <= key and (stop is None or key < stop)
        )
        if limit is not None:
            expected = expected[:limit]
        assert list(txn.iter_range(start, stop, limit=limit)) == expected
