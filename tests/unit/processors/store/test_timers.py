"""The due-time index: key layout, ordering and due queries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.store import (
    InvalidStoreDataError,
    MemoryPartitionStore,
    Store,
    StoreTransaction,
    TimerEntry,
    due_timers,
    next_due_ms,
    timer_key,
    workflow_id_of,
    workflow_key,
)
from processors.store.keys import TIMER_PREFIX, parse_timer_key

workflow_ids = st.text(min_size=1, max_size=12).filter(lambda text: "\0" not in text)
timers = st.builds(
    TimerEntry,
    due_ms=st.integers(min_value=0, max_value=2**64 - 1),
    workflow_id=workflow_ids,
    timer_id=st.text(max_size=12),
)


@given(timers)
def test_timer_key_round_trips(timer: TimerEntry) -> None:
    assert parse_timer_key(timer.key) == timer
    assert timer.key.startswith(TIMER_PREFIX)


@given(st.lists(timers, min_size=2, max_size=20))
def test_timer_keys_sort_by_due_time_first(entries: list[TimerEntry]) -> None:
    by_key = sorted(entries, key=lambda timer: timer.key)
    dues = [timer.due_ms for timer in by_key]
    assert dues == sorted(dues)


@given(workflow_ids)
def test_workflow_key_round_trips_and_is_apart_from_timers(workflow_id: str) -> None:
    key = workflow_key(workflow_id)
    assert workflow_id_of(key) == workflow_id
    assert not key.startswith(TIMER_PREFIX)


@pytest.mark.parametrize("workflow_id", ["", "a\0b"])
def test_bad_workflow_ids_are_refused(workflow_id: str) -> None:
    with pytest.raises(InvalidStoreDataError, match="workflow id"):
        workflow_key(workflow_id)
    with pytest.raises(InvalidStoreDataError, match="workflow id"):
        timer_key(1, workflow_id, "t")


@pytest.mark.parametrize("due_ms", [-1, 2**64, 1.0])
def test_bad_due_times_are_refused(due_ms: int) -> None:
    with pytest.raises(InvalidStoreDataError, match="due time"):
        timer_key(due_ms, "wf", "t")


@pytest.mark.parametrize("key", [b"wabc", b"t\x00\x00", b"t" + bytes(8) + b"no-separator"])
def test_parse_refuses_keys_that_are_not_timers(key: bytes) -> None:
    with pytest.raises(InvalidStoreDataError, match="not a timer index key"):
        parse_timer_key(key)


def test_workflow_id_of_refuses_other_keys() -> None:
    with pytest.raises(InvalidStoreDataError, match="not a workflow state key"):
        workflow_id_of(b"t123")


def _fill(store: Store, entries: list[TimerEntry]) -> None:
    txn = StoreTransaction(store.partition(0))
    for number, timer in enumerate(entries):
        txn.set(timer.key, f"payload-{number}".encode())
    # A workflow state key must never show up among the timers.
    txn.set(workflow_key("wf-1"), b"state")
    txn.commit(len(entries))


def test_due_timers_lists_only_due_ones_earliest_first(store: Store) -> None:
    entries = [
        TimerEntry(300, "wf-1", "timeout"),
        TimerEntry(100, "wf-2", "retry"),
        TimerEntry(200, "wf-1", "retry"),
        TimerEntry(200, "wf-0", "sleep"),
        TimerEntry(301, "wf-3", "retry"),
    ]
    _fill(store, entries)
    due = due_timers(store.partition(0), now_ms=300, limit=10)
    assert [timer for timer, _ in due] == [
        TimerEntry(100, "wf-2", "retry"),
        TimerEntry(200, "wf-0", "sleep"),
        TimerEntry(200, "wf-1", "retry"),
        TimerEntry(300, "wf-1", "timeout"),
    ]
    assert dict(due)[TimerEntry(100, "wf-2", "retry")] == b"payload-1"
    assert due_timers(store.partition(0), now_ms=99, limit=10) == []
    assert next_due_ms(store.partition(0)) == 100


def test_due_timers_pages_with_limit_and_after(store: Store) -> None:
    entries = [TimerEntry(due, f"wf-{due}", "t") for due in range(10)]
    _fill(store, entries)
    part = store.partition(0)
    first = due_timers(part, now_ms=7, limit=3)
    assert [timer for timer, _ in first] == entries[:3]
    rest = due_timers(part, now_ms=7, limit=100, after=first[-1][0])
    assert [timer for timer, _ in rest] == entries[3:8]
    assert due_timers(part, now_ms=7, limit=0) == []


def test_due_timers_sees_staged_adds_and_removals(store: Store) -> None:
    _fill(store, [TimerEntry(10, "wf-a", "t"), TimerEntry(20, "wf-b", "t")])
    txn = StoreTransaction(store.partition(0))
    txn.delete(TimerEntry(10, "wf-a", "t").key)
    txn.set(TimerEntry(15, "wf-c", "t").key, b"c")
    assert [timer.workflow_id for timer, _ in due_timers(txn, now_ms=20, limit=10)] == [
        "wf-c",
        "wf-b",
    ]
    assert next_due_ms(txn) == 15


def test_due_timers_at_the_end_of_time(store: Store) -> None:
    last = 2**64 - 1
    _fill(store, [TimerEntry(last, "wf", "t")])
    assert [timer.due_ms for timer, _ in due_timers(store.partition(0), last, 1)] == [last]


def test_next_due_ms_of_an_empty_index(store: Store) -> None:
    assert next_due_ms(store.partition(0)) is None


def test_negative_limit_is_refused() -> None:
    with pytest.raises(InvalidStoreDataError, match="limit"):
        due_timers(MemoryPartitionStore(), 0, -1)


class _RecordingReader:
    """Records the ranges asked of it and how many pairs were read."""

    def __init__(self, store: MemoryPartitionStore) -> None:
        self.store = store
        self.ranges: list[tuple[bytes, bytes | None, int | None]] = []
        self.pairs_read = 0

    def get(self, key: bytes) -> bytes | None:
        return self.store.get(key)

    def iter_range(
        self, start: bytes, stop: bytes | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        self.ranges.append((start, stop, limit))
        for pair in self.store.iter_range(start, stop, limit=limit):
            self.pairs_read += 1
            yield pair


def test_due_query_reads_only_the_due_range_of_many_pending_timers() -> None:
    part = MemoryPartitionStore()
    pending = {TimerEntry(1_000_000 + n, f"wf-{n}", "t").key: b"" for n in range(100_000)}
    due = {TimerEntry(n, f"due-{n}", "t").key: b"" for n in range(5)}
    part.write({**pending, **due})
    reader = _RecordingReader(part)
    assert len(due_timers(reader, now_ms=999_999, limit=1000)) == 5
    assert reader.pairs_read == 5
    [(start, stop, limit)] = reader.ranges
    assert start == TIMER_PREFIX
    assert stop == TIMER_PREFIX + (1_000_000).to_bytes(8, "big")
    assert limit == 1000
