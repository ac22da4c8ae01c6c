"""One batch of the saga processor on one partition: load, apply, decide, stage.

Everything here is independent of Kafka I/O: records come in as bytes, and what must be
produced in the batch's transaction comes out as :class:`~processors.outbox.Outgoing`
records plus the staged store changes. :mod:`processors.saga_processor` wraps it in the
consume → transaction → local write loop.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from processors.commands import command_records
from processors.dlq import DlqReason, dlq_record
from processors.metrics import Metrics
from processors.outbox import Outgoing
from processors.store.base import PartitionStore
from processors.store.timers import WORKFLOW_PREFIX, TimerEntry, due_timers, timer_key
from processors.store.transaction import StoreTransaction
from sagas.engine.plan import Transition, timer_fired
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import SerializationError, UnapplicableEventError
from sagas.events import INPUT_TYPES, Command, Event, EventType, StatusRecord
from schemas.codecs import Codec

log = logging.getLogger(__name__)

DECISION_HEADER = ("sagas.origin", b"processor")
"""Marks the decisions the processor appends, so it skips them unread when it reads them
back (they are in its state already). Participants never set it."""

PARKED_PREFIX = b"p"
"""``p<workflow id>`` -> why the workflow is parked (JSON)."""
HELD_PREFIX = b"h"
"""``h<workflow id>\\0<offset>`` -> an input that arrived while its workflow was parked."""


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a saga processor's records go."""

    saga: str
    events_topic: str
    changelog_topic: str
    status_topic: str
    dlq_topic: str
    command_topic: Callable[[str], str]
    """The topic of a queue's commands."""
    events_topic_of: Callable[[str], str]
    """The event log of another saga (child workflows, parents)."""


@dataclass(frozen=True, slots=True)
class Codecs:
    """The serializers of the records a processor reads and writes."""

    event: Codec[Event]
    """Of the saga's own event log (inputs read, decisions written)."""
    status: Codec[StatusRecord]
    command_for: Callable[[str], Codec[Command]]
    """Of a command topic, by topic name."""
    event_for: Callable[[str], Codec[Event]]
    """Of another saga's event log (child workflows and parents), by topic name."""


_DECISION_HEADERS = (DECISION_HEADER,)


def parked_key(workflow_id: str) -> bytes:
    return PARKED_PREFIX + workflow_id.encode()


def parked_ids(store: PartitionStore) -> set[str]:
    """The ids of the workflows parked in a partition's store."""
    stop = bytes((PARKED_PREFIX[0] + 1,))
    return {key[len(PARKED_PREFIX) :].decode() for key, _ in store.iter_range(PARKED_PREFIX, stop)}


def held_key(workflow_id: str, offset: int) -> bytes:
    return HELD_PREFIX + workflow_id.encode() + b"\0" + offset.to_bytes(8, "big")


class PartitionBatch:
    """Applies one batch of ``S.events`` records of one partition to its workflows."""

    def __init__(
        self,
        *,
        routing: Routing,
        codecs: Codecs,
        versions: SagaVersions,
        store: PartitionStore,
        partition: int,
        now_ms: int,
        metrics: Metrics,
        cache: dict[str, WorkflowState] | None = None,
        parked: set[str] | None = None,
    ) -> None:
        """``cache`` holds states as last committed (read, never written here); ``parked``
        the ids of the partition's parked workflows (when ``None``, the store is asked)."""
        self._routing = routing
        self._codecs = codecs
        self._versions = versions
        self._partition = partition
        self._now_ms = now_ms
        self._metrics = metrics
        self.txn = StoreTransaction(store)
        self._states: dict[str, WorkflowState | None] = {}
        self._timers_at_load: dict[str, dict[str, int]] = {}
        self._dirty: set[str] = set()
        self._parked: dict[str, bool] = {}
        self._cache = cache if cache is not None else {}
        self._known_parked = parked
        self.newly_parked: list[str] = []
        self.unparked: list[str] = []
        self.outgoing: list[Outgoing] = []
        self.inputs = 0
        self.earliest_new_timer: int | None = None
        self.timers_added = 0
        """Timer index entries added minus removed by this batch."""

    def apply_record(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        """Apply one record read from ``S.events`` at ``offset``."""
        self.inputs += 1
        try:
            if value is None:
                raise SerializationError("a record without a value is not an event")
            event = self._codecs.event.decode(value)
        except SerializationError as exc:
            wid = _text(key)
            self._dead_letter(offset, key, value, DlqReason.UNDECODABLE, exc, wid)
            if wid is not None:
                self._park(wid, DlqReason.UNDECODABLE, offset)
            return
        if event.type is EventType.REDRIVE_REQUESTED:
            self._redrive(offset, key, value, event)
            return
        if event.type not in INPUT_TYPES:
            return  # a decision this processor appended; it is in the state already
        wid = event.workflow_id
        if key is not None and key != wid.encode():
            self._dead_letter(offset, key, value, DlqReason.KEY_MISMATCH,
                              f"record key {key!r} is not workflow id {wid!r}", wid)  # fmt: skip
            return
        if event.saga != self._routing.saga:
            reason = f"event names saga {event.saga!r}; this processor runs {self._routing.saga!r}"
            self._dead_letter(offset, key, value, DlqReason.UNKNOWN_SAGA, reason, wid)
            self._park(wid, DlqReason.UNKNOWN_SAGA, offset)
            return
        if self._is_parked(wid):
            self.txn.set(held_key(wid, offset), value)
            return
        state = self._load(wid)
        try:
            plan = self._versions.plan_for(state, event)
        except UnapplicableEventError as exc:
            self._dead_letter(offset, key, value, DlqReason.UNKNOWN_VERSION, exc, wid)
            self._park(wid, DlqReason.UNKNOWN_VERSION, offset)
            return
        try:
            transition = plan.handle(state, event, self._now_ms)
        except UnapplicableEventError as exc:
            self._dead_letter(offset, key, value, DlqReason.UNAPPLICABLE, exc, wid)
            self._park(wid, DlqReason.UNAPPLICABLE, offset)
            return
        except Exception as exc:
            # A defect in a plan must not stop every other workflow of the partition.
            log.exception("applying %s to workflow %s failed", event.type, wid)
            self._dead_letter(offset, key, value, DlqReason.PROCESSING_ERROR, exc, wid)
            self._park(wid, DlqReason.PROCESSING_ERROR, offset)
            return
        self._metrics.event_processed(self._routing.saga, event.type.value)
        self._accept(wid, state, transition)

    def _redrive(self, offset: int, key: bytes | None, value: bytes, event: Event) -> None:
        wid = event.workflow_id
        try:
            original = base64.b64decode(json.loads(event.payload or "")["value"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            reason = f"a redrive must carry the record as base64 in payload 'value': {exc}"
            self._dead_letter(offset, key, value, DlqReason.UNAPPLICABLE, reason, wid)
            return
        if self._is_parked(wid):
            self.txn.delete(parked_key(wid))
            self._parked[wid] = False
            self.unparked.append(wid)
            state = self._load(wid)
            if state is not None:
                self._dirty.add(wid)  # its status record shows it no longer parked
                self._restore_timer_index(wid, state)
        # The record first, then what arrived while the workflow waited, in log order;
        # should one of them park the workflow again, the rest stays held.
        self.apply_record(offset, wid.encode(), original)
        start = HELD_PREFIX + wid.encode() + b"\0"
        stop = HELD_PREFIX + wid.encode() + b"\1"
        for held, held_value in list(self.txn.iter_range(start, stop)):
            if self._is_parked(wid):
                break
            self.txn.delete(held)
            self.apply_record(int.from_bytes(held[-8:], "big"), wid.encode(), held_value)

    def _restore_timer_index(self, wid: str, state: WorkflowState) -> None:
        # A parked workflow's due timers were taken out of the index unfired.
        for timer_id, due in state.timers.items():
            key = timer_key(due, wid, timer_id)
            if self.txn.get(key) is None:
                self.txn.set(key, b"")
                self.timers_added += 1
                if self.earliest_new_timer is None or due < self.earliest_new_timer:
                    self.earliest_new_timer = due

    def fire_due_timers(self, limit: int) -> int:
        """Fire up to ``limit`` timers due now; returns how many index entries were handled."""
        entries = due_timers(self.txn, self._now_ms, limit)
        for entry, _ in entries:
            self._fire(entry)
        return len(entries)

    def changed_states(self) -> dict[str, WorkflowState]:
        """The workflows this batch changed, as they will be once it commits."""
        return {wid: state for wid in self._dirty if (state := self._states[wid]) is not None}

    def finish(self) -> list[Outgoing]:
        """Stage the changed states, their timers and status records; return the changelog."""
        routing, status_codec = self._routing, self._codecs.status
        for wid in self._dirty:
            state = self._states[wid]
            if state is None:
                continue
            self.txn.set(WORKFLOW_PREFIX + wid.encode(), state.to_bytes())
            plan = self._versions.plans.get(state.version)
            status = state.status_record() if plan is None else plan.status_record(state)
            if self._parked.get(wid):
                status = replace(status, parked=True)
            self.outgoing.append(
                Outgoing(routing.status_topic, wid.encode(), status_codec.encode(status))
            )
            self._stage_timer_changes(wid, state)
        changelog = routing.changelog_topic
        partition = self._partition
        return [
            Outgoing(changelog, key, value, partition) for key, value in self.txn.changes().items()
        ]

    def _fire(self, entry: TimerEntry) -> None:
        wid = entry.workflow_id
        state = self._load(wid) if not self._is_parked(wid) else None
        if state is None or state.timers.get(entry.timer_id) != entry.due_ms:
            # Stale: the timer was cancelled or moved, or its workflow is parked (a redrive
            # rebuilds its timers from the state).
            self.txn.delete(entry.key)
            self.timers_added -= 1
            return
        fired = timer_fired(state, entry.timer_id, self._now_ms)
        try:
            transition = self._versions.plan_for(state, fired).handle(state, fired, self._now_ms)
        except Exception as exc:
            log.exception("firing timer %s of workflow %s failed", entry.timer_id, wid)
            self.txn.delete(entry.key)
            self.timers_added -= 1
            self._park(wid, DlqReason.PROCESSING_ERROR, None)
            self._dead_letter(-1, wid.encode(), self._codecs.event.encode(fired),
                              DlqReason.PROCESSING_ERROR, exc, wid)  # fmt: skip
            return
        # The fired event comes first among the decisions, so the log records it.
        self._accept(wid, state, transition)
        if entry.timer_id in transition.state.timers:
            return
        # The index entry goes with the timer; the diff at finish() sees it gone too.
        self.txn.delete(entry.key)
        self.timers_added -= 1
        self._timers_at_load[wid].pop(entry.timer_id, None)

    def _accept(self, wid: str, before: WorkflowState | None, transition: Transition) -> None:
        state = transition.state
        self._states[wid] = state
        self._dirty.add(wid)
        key = wid.encode()
        routing, codecs, partition = self._routing, self._codecs, self._partition
        out = self.outgoing
        for decision in transition.decisions:
            out.append(
                Outgoing(routing.events_topic, key, codecs.event.encode(decision), partition)
            )
        for queue, command in command_records(transition, routing.events_topic):
            topic = routing.command_topic(queue)
            out.append(Outgoing(topic, key, codecs.command_for(topic).encode(command)))
        for event in transition.outbound:
            topic = routing.events_topic_of(event.saga)
            out.append(Outgoing(topic, event.workflow_id.encode(),
                                codecs.event_for(topic).encode(event)))  # fmt: skip
        if before is None and state is not None:
            self._metrics.workflow_started(routing.saga)
        if (
            state is not None
            and state.status.is_final
            and (before is None or not before.status.is_final)
        ):
            self._metrics.workflow_ended(routing.saga, state.status.value)

    def _stage_timer_changes(self, wid: str, state: WorkflowState) -> None:
        old = self._timers_at_load.get(wid, {})
        new = state.timers
        if old == new:
            return
        for timer_id, due in old.items():
            if new.get(timer_id) != due:
                self.txn.delete(timer_key(due, wid, timer_id))
                self.timers_added -= 1
        for timer_id, due in new.items():
            if old.get(timer_id) != due:
                self.txn.set(timer_key(due, wid, timer_id), b"")
                self.timers_added += 1
                if self.earliest_new_timer is None or due < self.earliest_new_timer:
                    self.earliest_new_timer = due

    def _load(self, wid: str) -> WorkflowState | None:
        if wid in self._states:
            return self._states[wid]
        state = self._cache.get(wid)
        if state is None:
            data = self.txn.get(WORKFLOW_PREFIX + wid.encode())
            state = WorkflowState.from_bytes(data) if data is not None else None
        self._states[wid] = state
        self._timers_at_load[wid] = dict(state.timers) if state is not None else {}
        return state

    def _is_parked(self, wid: str) -> bool:
        parked = self._parked.get(wid)
        if parked is None:
            if self._known_parked is not None:
                parked = wid in self._known_parked
            else:
                parked = self.txn.get(parked_key(wid)) is not None
            self._parked[wid] = parked
        return parked

    def _park(self, wid: str, reason: DlqReason, offset: int | None) -> None:
        if self._is_parked(wid):
            return
        self._parked[wid] = True
        self.newly_parked.append(wid)
        record = {"reason": reason.value, "offset": offset, "time_ms": self._now_ms}
        self.txn.set(parked_key(wid), json.dumps(record).encode())
        state = self._load(wid)
        if state is not None:
            self._dirty.add(wid)  # its status record shows it parked

    def _dead_letter(
        self,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: DlqReason,
        exception: BaseException | str,
        wid: str | None,
    ) -> None:
        self._metrics.dlq_record(self._routing.saga, reason.value)
        self.outgoing.append(
            dlq_record(
                self._routing.dlq_topic,
                key=key,
                value=value,
                reason=reason,
                exception=exception,
                source_topic=self._routing.events_topic,
                source_partition=self._partition,
                source_offset=offset,
                attempts=1,
                now_ms=self._now_ms,
                workflow_id=wid,
            )
        )


def _text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None
