"""The key layout of a saga processor's partition store: every prefix, builder and parser.

One byte (two for the visibility indexes) says what a key holds:

- ``w`` + workflow id -> the workflow's state;
- ``t`` + due_ms (8 bytes, big-endian) + workflow id + NUL + timer id -> empty: the
  due-time index of durable timers, sorted by due time, so the due timers are a range
  scan from the start of the prefix up to ``now``, however many are pending;
- ``r`` + workflow id + NUL + run id -> the state an earlier run of the workflow ended
  with when it continued as new, kept for the retention period of ended workflows;
- ``p`` + workflow id -> why the workflow is parked (JSON);
- ``h`` + workflow id + NUL + offset (8 bytes) -> an input that arrived while its
  workflow was parked, in log order;
- ``d`` + DLQ partition + ``:`` + DLQ offset -> ``redriven`` or ``discarded``: a dead
  letter already put back or given up, so that a second request for it has no effect;
- ``is`` + newest-first start time (8 bytes) + workflow id -> the workflow's summary;
- ``ix`` + status + NUL + newest-first start time + workflow id -> empty;
- ``ia`` + attribute name + NUL + value (JSON) + NUL + newest-first start time +
  workflow id -> the workflow's status (empty where an earlier version wrote it).

A workflow id may not contain NUL, so no key of one workflow is a prefix of another's.
"""

from __future__ import annotations

from dataclasses import dataclass

from processors.store.errors import InvalidStoreDataError
from sagas.compact_json import compact_json
from sagas.visibility import SearchValue

WORKFLOW_PREFIX = b"w"
TIMER_PREFIX = b"t"
RUN_PREFIX = b"r"
PARKED_PREFIX = b"p"
HELD_PREFIX = b"h"
HANDLED_PREFIX = b"d"
START_INDEX = b"is"
STATUS_INDEX = b"ix"
ATTRIBUTE_INDEX = b"ia"

DUE_BYTES = 8
STARTED_BYTES = 8
MAX_DUE_MS = (1 << (8 * DUE_BYTES)) - 1
SEPARATOR = b"\0"
_OFFSET_BYTES = 8


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key past every key that starts with ``prefix`` (one byte, not 0xff)."""
    return prefix[:-1] + bytes((prefix[-1] + 1,))


def workflow_key(workflow_id: str) -> bytes:
    """The store key of a workflow's state."""
    return WORKFLOW_PREFIX + workflow_id_bytes(workflow_id)


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
        TIMER_PREFIX + due_bytes(due_ms) + workflow_id_bytes(workflow_id) + SEPARATOR
        + timer_id.encode()
    )  # fmt: skip


def parse_timer_key(key: bytes) -> TimerEntry:
    """The timer a :func:`timer_key` was made from."""
    header = len(TIMER_PREFIX) + DUE_BYTES
    separator = key.find(SEPARATOR, header)
    if not key.startswith(TIMER_PREFIX) or separator < 0:
        raise InvalidStoreDataError(f"not a timer index key: {key!r}")
    return TimerEntry(
        due_ms=int.from_bytes(key[len(TIMER_PREFIX) : header], "big"),
        workflow_id=key[header:separator].decode(),
        timer_id=key[separator + 1 :].decode(),
    )


def timers_due_by(now_ms: int) -> bytes:
    """The smallest index key past every timer due at ``now_ms``."""
    return TIMER_PREFIX + due_bytes(now_ms + 1) if now_ms < MAX_DUE_MS else prefix_end(TIMER_PREFIX)


def runs_prefix(workflow_id: str) -> bytes:
    """The prefix of the keys of a workflow's earlier runs."""
    return RUN_PREFIX + workflow_id_bytes(workflow_id) + SEPARATOR


def run_key(workflow_id: str, run_id: str) -> bytes:
    """The key of the state an earlier run of a workflow ended with."""
    return runs_prefix(workflow_id) + run_id.encode()


def parked_key(workflow_id: str) -> bytes:
    """The key of a parked workflow's marker (why it is parked)."""
    return PARKED_PREFIX + workflow_id.encode()


def parked_id_of(key: bytes) -> str:
    """The workflow id a :func:`parked_key` was made from."""
    return key[len(PARKED_PREFIX) :].decode()


def held_key(workflow_id: str, offset: int) -> bytes:
    """The key of an input held for a parked workflow: its workflow's, then log order."""
    return held_prefix(workflow_id) + offset.to_bytes(_OFFSET_BYTES, "big")


def held_prefix(workflow_id: str) -> bytes:
    """The prefix every held input of a workflow starts with."""
    return HELD_PREFIX + workflow_id.encode() + SEPARATOR


def held_offset_of(key: bytes) -> int:
    """The log offset a :func:`held_key` was made from."""
    return int.from_bytes(key[-_OFFSET_BYTES:], "big")


def handled_key(position: tuple[int, int]) -> bytes:
    """The key marking the dead letter at ``(DLQ partition, DLQ offset)`` as handled."""
    return HANDLED_PREFIX + f"{position[0]}:{position[1]}".encode()


def newest_first(started_ms: int) -> bytes:
    """A start time as 8 bytes that sort the newest first."""
    return (MAX_DUE_MS - max(0, started_ms)).to_bytes(STARTED_BYTES, "big")


def started_bound(prefix: bytes, started_ms: int) -> bytes:
    """The first key of the index under ``prefix`` whose workflow started at or before
    ``started_ms``: the entries of workflows started later all sort before it."""
    return prefix + newest_first(started_ms)


def entry_end(prefix: bytes, started_ms: int, workflow_id: str) -> bytes:
    """The smallest key past a workflow's entry in the index under ``prefix``."""
    return prefix + newest_first(started_ms) + workflow_id.encode() + SEPARATOR


def indexed_workflow_id(key: bytes, prefix: bytes) -> str:
    """The workflow id an entry of the index under ``prefix`` was made for."""
    return key[len(prefix) + STARTED_BYTES :].decode()


def summary_key_of(key: bytes, prefix: bytes) -> bytes:
    """The start-index key, which holds the summary, of an entry of the index under
    ``prefix`` (every index entry ends with the same start time and workflow id)."""
    return START_INDEX + key[len(prefix) :]


def start_key(started_ms: int, workflow_id: str) -> bytes:
    """The key of a workflow's summary in the start-time index."""
    return START_INDEX + newest_first(started_ms) + workflow_id.encode()


def status_prefix(status: str) -> bytes:
    """The prefix of the status index entries of ``status``."""
    return STATUS_INDEX + status.encode() + SEPARATOR


def status_key(status: str, started_ms: int, workflow_id: str) -> bytes:
    """The key of a workflow's entry in the status index."""
    return status_prefix(status) + newest_first(started_ms) + workflow_id.encode()


def attribute_prefix(name: str, value: SearchValue) -> bytes:
    """The prefix of the attribute index entries of ``name`` = ``value``."""
    value_bytes = compact_json(value).encode()
    return ATTRIBUTE_INDEX + name.encode() + SEPARATOR + value_bytes + SEPARATOR


def attribute_key(name: str, value: SearchValue, started_ms: int, workflow_id: str) -> bytes:
    """The key of a workflow's entry in the index of one search attribute."""
    return attribute_prefix(name, value) + newest_first(started_ms) + workflow_id.encode()


def due_bytes(due_ms: int) -> bytes:
    """A due time as the 8 big-endian bytes that make index keys sort by it."""
    if type(due_ms) is not int or not 0 <= due_ms <= MAX_DUE_MS:
        raise InvalidStoreDataError(
            f"timer due time must be an int of milliseconds in [0, 2**64), got {due_ms!r}"
        )
    return due_ms.to_bytes(DUE_BYTES, "big")


def workflow_id_bytes(workflow_id: str) -> bytes:
    """A workflow id as key bytes; ``InvalidStoreDataError`` if empty or holding NUL."""
    if not isinstance(workflow_id, str) or not workflow_id:
        raise InvalidStoreDataError(f"workflow id must be a non-empty str, got {workflow_id!r}")
    encoded = workflow_id.encode()
    if SEPARATOR in encoded:
        raise InvalidStoreDataError(f"workflow id may not contain NUL: {workflow_id!r}")
    return encoded
