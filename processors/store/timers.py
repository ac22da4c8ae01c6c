"""The key layout of workflow state and of the due-time index of durable timers.

Workflow state lives under ``b"w" + workflow_id``. Each pending timer has one index entry
under ``b"t" + due_ms (8 bytes, big-endian) + workflow_id + b"\\0" + timer_id``, so that
the keys sort by due time and the due timers are a range scan from the start of the
``t`` prefix up to ``now``, never a full scan, however many timers are pending.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.store.base import RangeReader
from processors.store.errors import InvalidStoreDataError
from processors.store.transaction import StoreTransaction

WORKFLOW_PREFIX = b"w"
TIMER_PREFIX = b"t"
_DUE_BYTES = 8
_MAX_DUE_MS = (1 << (8 * _DUE_BYTES)) - 1
_SEPARATOR = b"\0"


def workflow_key(workflow_id: str) -> bytes:
    """The store key of a workflow's state."""
    return WORKFLOW_PREFIX + _workflow_id_bytes(workflow_id)


def workflow_id_of(key: bytes) -> str:
    """The workflow id a :func:`workflow_key` was made from."""
    if not key.startswith(WORKFLOW_PREFIX):
        raise InvalidStoreDataError(f"not a workflow state key: {key!r}")
    return key[len(WORKFLOW_PREFIX) :].decode()


@dataclass(frozen=True, slots=True, order=True)
class TimerEntry:
    """One pending timer in the due-time index; ordered as its key sorts."""

    due_ms: int
    """When it fires, in milliseconds since the epoch."""

    workflow_id: str
    """The workflow it belongs to (may not contain NUL)."""

    timer_id: str
    """Which of the workflow's timers it is: an encoded :class:`sagas.engine.TimerId`."""

    @property
    def key(self) -> bytes:
        """Its key in the due-time index."""
        return timer_key(self.due_ms, self.workflow_id, self.timer_id)


def timer_key(due_ms: int, workflow_id: str, timer_id: str) -> bytes:
    """The index key of a timer: sorts by due time, then workflow, then timer id."""
    return (
        TIMER_PREFIX
        + _due_bytes(due_ms)
        + _workflow_id_bytes(workflow_id)
        + _SEPARATOR
        + timer_id.encode()
    )


def parse_timer_key(key: bytes) -> TimerEntry:
    """The timer a :func:`timer_key` was made from."""
    header = len(TIMER_PREFIX) + _DUE_BYTES
    separator = key.find(_SEPARATOR, header)
    if not key.startswith(TIMER_PREFIX) or separator < 0:
        raise InvalidStoreDataError(f"not a timer index key: {key!r}")
    return TimerEntry(
        due_ms=int.from_bytes(key[len(TIMER_PREFIX) : header], "big"),
        workflow_id=key[header:separator].decode(),
        timer_id=key[separator + 1 :].decode(),
    )


def add_timer(txn: StoreTransaction, timer: TimerEntry, payload: bytes = b"") -> None:
    """Stage a timer's index entry, with ``payload`` saying what to do when it fires."""
    txn.set(timer.key, payload)


def remove_timer(txn: StoreTransaction, timer: TimerEntry) -> None:
    """Stage the removal of a timer's index entry (it fired or was cancelled)."""
    txn.delete(timer.key)


def due_timers(
    reader: RangeReader,
    now_ms: int,
    limit: int,
    *,
    after: TimerEntry | None = None,
) -> list[tuple[TimerEntry, bytes]]:
    """Up to ``limit`` timers due at ``now_ms`` (``due_ms <= now_ms``), earliest first.

    ``after`` continues a listing past the last entry of a previous one. ``reader`` is a
    partition store or a transaction (whose staged timers then count).
    """
    if limit < 0:
        raise InvalidStoreDataError(f"limit must be >= 0, got {limit}")
    start = TIMER_PREFIX if after is None else after.key + b"\0"
    # The smallest key past every timer due at now_ms.
    stop = TIMER_PREFIX + _due_bytes(now_ms + 1) if now_ms < _MAX_DUE_MS else _prefix_end()
    return [
        (parse_timer_key(key), payload)
        for key, payload in reader.iter_range(start, stop, limit=limit)
    ]


def next_due_ms(reader: RangeReader) -> int | None:
    """When the earliest pending timer is due, or ``None`` if there is none."""
    for key, _ in reader.iter_range(TIMER_PREFIX, _prefix_end(), limit=1):
        return parse_timer_key(key).due_ms
    return None


def count_timers(reader: RangeReader) -> int:
    """How many timers are pending (a scan of the index: run it on assignment, not per batch)."""
    return sum(1 for _ in reader.iter_range(TIMER_PREFIX, _prefix_end()))


def _prefix_end() -> bytes:
    return bytes([TIMER_PREFIX[0] + 1])


def _due_bytes(due_ms: int) -> bytes:
    if type(due_ms) is not int or not 0 <= due_ms <= _MAX_DUE_MS:
        raise InvalidStoreDataError(
            f"timer due time must be an int of milliseconds in [0, 2**64), got {due_ms!r}"
        )
    return due_ms.to_bytes(_DUE_BYTES, "big")


def _workflow_id_bytes(workflow_id: str) -> bytes:
    if not isinstance(workflow_id, str) or not workflow_id:
        raise InvalidStoreDataError(f"workflow id must be a non-empty str, got {workflow_id!r}")
    encoded = workflow_id.encode()
    if _SEPARATOR in encoded:
        raise InvalidStoreDataError(f"workflow id may not contain NUL: {workflow_id!r}")
    return encoded
