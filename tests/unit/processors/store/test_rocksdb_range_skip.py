"""RocksDB skips the known-empty front of a range (timer tombstones) without changing answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.store import (
    PartitionStore,
    RocksDBPartitionStore,
    StoreTransaction,
    TimerEntry,
    due_timers,
)
from processors.store.keys import prefix_end

from .conftest import FAST_OPTIONS

KEYS = [b"", b"a", b"a\x00", b"ab", b"b", b"ba", b"c", b"t", b"t\x00", b"t\x01", b"u", b"\xff"]
keys = st.sampled_from(KEYS)
write = st.tuples(
    st.just("write"), st.dictionaries(keys, st.none() | st.sampled_from([b"1", b"2"]), max_size=4)
)
# Few scan starts, so that what a scan learns is reused by the next ones.
scan = st.tuples(
    st.sampled_from(["scan", "open"]),
    st.sampled_from([b"", b"a", b"t"]),
    st.none() | keys,
    st.none() | st.integers(min_value=0, max_value=3),
)
finish = st.tuples(st.just("finish"), st.integers(min_value=0, max_value=5))
operations = st.lists(st.one_of(write, scan, finish), max_size=40)


def _expected(
    model: dict[bytes, bytes], start: bytes, stop: bytes | None, limit: int | None
) -> list[tuple[bytes, bytes]]:
    pairs = sorted(
        (key, value)
        for key, value in model.items()
        if start <= key and (stop is None or key < stop)
    )
    return pairs if limit is None else pairs[:limit]


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocksDBPartitionStore]:
    """One database for every example: opening one costs tens of milliseconds."""
    store = RocksDBPartitionStore(tmp_path_factory.mktemp("skip") / "db", 0, FAST_OPTIONS)
    yield store
    store.close()


@settings(max_examples=150, deadline=None)
@given(ops=operations)
def test_scans_interleaved_with_writes_match_a_dict_model(
    shared_store: RocksDBPartitionStore, ops: list[tuple[object, ...]]
) -> None:
    store = shared_store
    store.clear()
    model: dict[bytes, bytes] = {}
    pending: list[tuple[Iterator[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]] = []
    for op in ops:
        if op[0] == "write":
            changes = op[1]
            assert isinstance(changes, dict)
            store.write(changes)
            for key, value in changes.items():
                if value is None:
                    model.pop(key, None)
                else:
                    model[key] = value
        elif op[0] in {"scan", "open"}:
            _, start, stop, limit = op
            assert isinstance(start, bytes)
            assert stop is None or isinstance(stop, bytes)
            assert limit is None or isinstance(limit, int)
            pairs = store.iter_range(start, stop, limit=limit)
            expected = _expected(model, start, stop, limit)
            if op[0] == "scan":
                assert list(pairs) == expected
            else:
                pending.append((pairs, expected))
        elif pending:
            index = op[1]
            assert isinstance(index, int)
            pairs, expected = pending.pop(index % len(pending))
            assert list(pairs) == expected
    for pairs, expected in pending:
        assert list(pairs) == expected
    assert list(store.iter_range(b"")) == sorted(model.items())


def _fire_all(store: PartitionStore, count: int) -> None:
    """Fire ``count`` timers 100 at a time, as the punctuator does."""
    store.write({TimerEntry(n, f"wf-{n}", "t").key: b"" for n in range(count)}, 0)
    for offset, now in enumerate(range(99, count + 99, 100), start=1):
        txn = StoreTransaction(store)
        for timer, _ in due_timers(txn, now, 100):
            txn.delete(timer.key)
        txn.commit(offset)


def test_due_scan_after_firing_many_timers_skips_their_tombstones(tmp_path: Path) -> None:
    # Fired timers stay as tombstones at the front of the index until a compaction;
    # walking them on every scan made each one cost milliseconds, and firing N timers
    # quadratic (33 s for 200K). A scan must seek past them.
    store = RocksDBPartitionStore(tmp_path / "db", 0, FAST_OPTIONS)
    try:
        _fire_all(store, 30_000)
        timings = []
        for _ in range(21):
            started = time.perf_counter()
            assert due_timers(store, 10**9, 100) == []
            timings.append(time.perf_counter() - started)
        assert sorted(timings)[10] < 0.001
    finally:
        store.close()


def test_another_thread_s_reader_scans_a_bounded_range_to_its_end(tmp_path: Path) -> None:
    # The bound of a scan must outlive the call that set it up: a reader whose bound was
    # collected ended its scans early, at whatever that memory came to hold.
    store = RocksDBPartitionStore(tmp_path / "db", 0, FAST_OPTIONS)
    wanted = {b"rw\x00" + bytes([c]) * 40: b"v" for c in b"0123456789abcdef"}
    store.write({**wanted, b"rv": b"before", b"rw\x01": b"after", b"s": b"after"})
    reader = store.concurrent_reader()
    for _ in range(50):
        # A bound made for the call (not a constant that lives on in the code object).
        assert [k for k, _ in reader.iter_range(b"rw\x00", prefix_end(b"rw\x00"))] == sorted(wanted)
    store.close()
