"""Rebuilding one partition of the saga processor's store by folding its event log.

The log holds every input and every decision the processor took, so a workflow's state
is the fold of its events: nothing is decided again and nothing is sent. What the
processor did with records it could not apply is read from the dead-letter queue (the
record at that offset went there, so it was not applied and, for most reasons, parked
its workflow); inputs that arrived while a workflow was parked are held, as the
processor holds them, until a redrive applies them in log order. Given the saga's
visibility settings, the search index and retention timers are staged as the processor
stages them, and an ended workflow past its retention is left out, as the processor's
retention timer removed it (that removal is not in the log).
"""

from __future__ import annotations

import base64
import gc
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from processors.log_reading import DeadLettered, DeadLetterIndex
from processors.saga_batch import ESCAPES, dead_letter_position
from processors.store.keys import (
    handled_key,
    held_key,
    parked_key,
    timer_key,
    workflow_key,
)
from processors.store.memory import MemoryPartitionStore
from processors.store.transaction import StoreTransaction
from processors.visibility_staging import VisibilityStaging
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError, SerializationError
from sagas.events import INPUT_TYPES, Event, EventType
from sagas.log_order import processing_order
from schemas.avro_reader import read_event
from schemas.codecs import Codec
from topics.dead_letter_headers import DlqReason

_NOT_PARKING = frozenset({DlqReason.KEY_MISMATCH.value})
"""Dead-letter reasons after which the processor goes on with the workflow."""


_OPERATOR_REQUESTS = frozenset({EventType.REDRIVE_REQUESTED, EventType.DISCARD_REQUESTED})


@contextmanager
def collection_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector while a log is folded.

    A fold keeps every event of its partition until it ends, and those objects hold no
    cycles: each collection pass only walks a heap that grows with the log, which made
    the collector take as long as the fold itself on logs of 100,000s of events.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ReplayError(SagaError):
    """The event log cannot be folded into the processor's state."""


@dataclass(slots=True)
class RebuiltPartition:
    """The store content one partition's log folds to."""

    partition: int
    states: Mapping[str, WorkflowState]
    changes: dict[bytes, bytes]
    """Every key of the rebuilt store with its value, in key order: states, timer index,
    parked, held, and (given the visibility settings) the search index and retention
    timers."""
    events: int = 0
    """Events read (records, not transaction markers)."""
    parked: set[str] = field(default_factory=set)
    worker_cpu_s: float = 0.0
    """CPU seconds the worker process that folded it spent on it (0 when folded here)."""


class PartitionFold:
    """Folds one partition of ``S.events``, record by record in offset order."""

    def __init__(
        self,
        versions: SagaVersions,
        codec: Codec[Event],
        partition: int,
        dead_letters: DeadLetterIndex | None = None,
        inputs_end: int | None = None,
        visibility: VisibilityStaging | None = None,
        now_ms: int | None = None,
    ) -> None:
        """``inputs_end``: the offset from which inputs were not processed yet (the group's
        committed offset); they are left for the processor, while decisions are all taken.
        ``visibility`` stages index entries and retention, judged at ``now_ms``."""
        self._versions = versions
        self._decode = _decoder(codec)
        self._saga = versions.name
        self.partition = partition
        letters = dead_letters or DeadLetterIndex({}, {})
        self._letters: Mapping[tuple[int, int], DeadLettered] = letters.records
        self._timer_failures = letters.timer_failures
        self._events: dict[str, list[Event]] = {}
        self._parked: dict[str, bytes] = {}
        self._held: dict[str, list[tuple[int, bytes]]] = {}
        self._redriven_at: dict[str, int] = {}
        self._handled: dict[tuple[int, int], bytes] = {}
        self.records = 0
        self._inputs_end = inputs_end if inputs_end is not None else 2**63
        self._visibility = visibility
        self._now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000

    def add(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        """Take the record at ``offset`` as the processor took it."""
        self.records += 1
        if value is None and offset >= self._inputs_end:
            return
        try:
            if value is None:
                raise SerializationError("a record without a value is not an event")
            event = self._decode(value)
        except SerializationError:
            letter = self._letters.get((self.partition, offset))
            wid = _text(key)
            if letter is not None and wid is not None and letter.reason not in _NOT_PARKING:
                self._park(wid, letter, offset)
            return
        wid = event.workflow_id
        kind = event.type
        if offset >= self._inputs_end and (kind in INPUT_TYPES or kind in _OPERATOR_REQUESTS):
            return
        if kind is EventType.REDRIVE_REQUESTED:
            self._redrive(offset, event)
            return
        if kind is EventType.DISCARD_REQUESTED:
            self._discard(event)
            return
        if kind not in INPUT_TYPES:
            events = self._events.get(wid)
            if events is None:
                self._events[wid] = [event]
            else:
                events.append(event)
            return
        self._input(offset, key, value, event)

    def _input(self, offset: int, key: bytes | None, value: bytes, event: Event) -> None:
        wid = event.workflow_id
        if key is not None and key != wid.encode():
            return  # dead-lettered, its workflow untouched
        if wid in self._parked:
            if event.type not in ESCAPES:
                self._held.setdefault(wid, []).append((offset, value))
                return
            del self._parked[wid]
            self._redriven_at[wid] = event.time_ms
            self._release(wid)
        letter = self._letters.get((self.partition, offset))
        if letter is not None or event.saga != self._saga:
            if letter is None or letter.reason not in _NOT_PARKING:
                self._park(wid, letter, offset)
            return
        events = self._events.get(wid)
        if events is None:
            self._events[wid] = [event]
        else:
            events.append(event)

    def _redrive(self, offset: int, event: Event) -> None:
        wid = event.workflow_id
        try:
            original = base64.b64decode(json.loads(event.payload or "")["value"], validate=True)
        except (ValueError, KeyError, TypeError):
            return  # dead-lettered by the processor too
        position = dead_letter_position(event.payload)
        if position is not None:
            if position in self._handled:
                return
            self._handled[position] = b"redriven"
        self._redriven_at[wid] = event.time_ms
        was_parked = self._parked.pop(wid, None) is not None
        self._apply_again(offset, wid, original)
        if was_parked:
            self._release(wid)

    def _discard(self, event: Event) -> None:
        position = dead_letter_position(event.payload)
        if position is None or position in self._handled:
            return
        self._handled[position] = b"discarded"
        wid = event.workflow_id
        self._redriven_at[wid] = event.time_ms
        if self._parked.pop(wid, None) is not None:
            self._release(wid)

    def _release(self, wid: str) -> None:
        """Apply what was held for ``wid`` (just unparked), in order, until it parks again."""
        for at, value in self._held.pop(wid, []):
            if wid in self._parked:
                self._held.setdefault(wid, []).append((at, value))
            else:
                self._apply_again(at, wid, value)

    def _apply_again(self, offset: int, wid: str, value: bytes) -> None:
        try:
            event = self._decode(value)
        except SerializationError:
            letter = self._letters.get((self.partition, offset))
            if letter is not None and letter.reason not in _NOT_PARKING:
                self._park(wid, letter, offset)
            return
        if event.type in INPUT_TYPES:
            self._input(offset, wid.encode(), value, event)

    def _park(self, wid: str, letter: DeadLettered | None, offset: int | None) -> None:
        if wid in self._parked:
            return
        reason = letter.reason if letter is not None else DlqReason.UNKNOWN_SAGA.value
        time_ms = letter.time_ms if letter is not None else 0
        record = {"reason": reason, "offset": offset, "time_ms": time_ms}
        self._parked[wid] = json.dumps(record).encode()

    def finish(self) -> RebuiltPartition:
        """The store content the partition's log folds to."""
        for wid, letter in self._timer_failures.items():
            # A timer whose firing failed parked its workflow unless a later redrive freed it.
            if wid in self._events and self._redriven_at.get(wid, -1) < letter.time_ms:
                self._park(wid, letter, None)
        states: dict[str, WorkflowState] = {}
        changes: dict[bytes, bytes] = {}
        events_seen = 0
        ended_runs: list[WorkflowState] = []
        for wid, events in self._events.items():
            events_seen += len(events)
            state = self._fold(wid, events, ended_runs)
            if state is None or self._expired(state):
                continue
            states[wid] = state
            changes[workflow_key(wid)] = state.to_bytes()
            for timer_id, due in state.timers.items():
                changes[timer_key(due, wid, timer_id)] = b""
        if self._visibility is not None:
            staged = StoreTransaction(MemoryPartitionStore(self.partition))
            for wid, state in states.items():
                self._visibility.stage(staged, state, parked=wid in self._parked)
            for ended in ended_runs:
                # Kept as the processor kept it, unless its removal would have come by now.
                keep = self._visibility.retention_ms(ended.version)
                if ended.workflow_id in states and (
                    keep is None or ended.updated_ms + keep > self._now_ms
                ):
                    self._visibility.keep_run(staged, ended)
            changes.update((k, v) for k, v in staged.changes().items() if v is not None)
        for wid, marker in self._parked.items():
            changes[parked_key(wid)] = marker
        for wid, held in self._held.items():
            for offset, value in held:
                changes[held_key(wid, offset)] = value
        for position, what in self._handled.items():
            changes[handled_key(position)] = what
        # In key order: RocksDB takes a million sorted keys in half the time of shuffled ones
        # (its memtable inserts each next to the one before).
        changes = dict(sorted(changes.items()))
        return RebuiltPartition(self.partition, states, changes, self.records, set(self._parked))

    def _expired(self, state: WorkflowState) -> bool:
        """Whether the processor's retention timer has removed ``state`` by now."""
        if self._visibility is None or not state.status.is_final:
            return False
        keep = self._visibility.retention_ms(state.version)
        return keep is not None and state.updated_ms + keep <= self._now_ms

    def _fold(
        self, wid: str, events: list[Event], ended_runs: list[WorkflowState]
    ) -> WorkflowState | None:
        ordered = processing_order(events)
        started = next((e for e in ordered if e.type is EventType.STARTED), None)
        if started is None:
            return None
        plan = self._versions.plans.get(started.version)
        if plan is None:
            raise ReplayError(
                f"workflow {wid!r} runs version {started.version} of saga {self._saga!r},"
                f" which the given definition lacks (it has {sorted(self._versions.plans)})",
                saga=self._saga,
                workflow_id=wid,
            )
        return plan.fold(ordered, ended_runs)


def _decoder(codec: Codec[Event]) -> Callable[[bytes], Event]:
    """The codec's decode, with plain Avro bodies read by the direct reader (about twice
    as fast); framed (schema registry) values, which start with byte 0, go to the codec."""
    slow = codec.decode

    def decode(data: bytes) -> Event:
        if data[:1] == b"\0":
            return slow(data)
        return read_event(data)

    return decode


def _text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None
