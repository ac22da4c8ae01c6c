"""One batch of the saga processor on one partition: load, apply, decide, stage.

Everything here is independent of Kafka I/O: records come in as bytes, and what must be
produced in the batch's transaction comes out as :class:`~processors.outgoing_records.Outgoing`
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
from processors.dlq import dlq_record
from processors.metrics import Metrics
from processors.outgoing_records import Outgoing
from processors.store.base import PartitionStore
from processors.store.keys import (
    PARKED_PREFIX,
    WORKFLOW_PREFIX,
    TimerEntry,
    handled_key,
    held_key,
    held_offset_of,
    held_prefix,
    parked_id_of,
    parked_key,
    prefix_end,
    timer_key,
)
from processors.store.timers import due_timers
from processors.store.transaction import StoreTransaction
from processors.visibility_staging import VisibilityStaging
from sagas.engine.fold import NO_TRACE, RESULT_TOO_LARGE
from sagas.engine.plan import Transition, timer_fired
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import RecordTooLargeError, SerializationError, UnapplicableEventError
from sagas.events import (
    INPUT_TYPES,
    Command,
    ErrorInfo,
    Event,
    EventType,
    Origin,
    StatusRecord,
)
from schemas.codecs import Codec
from topics.dead_letter_headers import DlqReason
from topics.partitioning import partition_for
from topics.record_limits import RecordLimits

log = logging.getLogger(__name__)

DECISION_HEADER = ("sagas.origin", b"processor")
"""Marks the decisions the processor appends, so it skips them unread when it reads them
back (they are in its state already). Participants never set it."""

ESCAPES = frozenset({EventType.CANCEL_REQUESTED, EventType.TERMINATE_REQUESTED})
"""Inputs never held behind a parked record: an operator's way out of a stuck workflow.
The workflow leaves the park, what was held is applied in log order, then the request
(the dead record stays in the DLQ, to redrive or discard)."""


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


def parked_ids(store: PartitionStore) -> set[str]:
    """The ids of the workflows parked in a partition's store."""
    stop = prefix_end(PARKED_PREFIX)
    return {parked_id_of(key) for key, _ in store.iter_range(PARKED_PREFIX, stop)}


def dead_letter_position(payload: str | None) -> tuple[int, int] | None:
    """The DLQ position a redrive or discard request names (``dlq_partition`` and
    ``dlq_offset`` in its JSON payload), or ``None`` when it names none."""
    try:
        data = json.loads(payload or "")
        partition, offset = data["dlq_partition"], data["dlq_offset"]
    except (ValueError, KeyError, TypeError):
        return None
    if type(partition) is not int or type(offset) is not int or partition < 0 or offset < 0:
        return None
    return partition, offset


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
        partitions: int,
        now_ms: int,
        metrics: Metrics,
        cache: dict[str, WorkflowState] | None = None,
        parked: set[str] | None = None,
        limits: RecordLimits | None = None,
        refused: frozenset[str] = frozenset(),
        visibility: VisibilityStaging | None = None,
    ) -> None:
        """``partitions`` is the event topic's partition count, which places every workflow;
        ``cache`` holds states as last committed (read, never written here); ``parked``
        the ids of the partition's parked workflows (when ``None``, the store is asked);
        ``limits`` the record sizes the topics take (``None``: no check); ``refused`` the
        workflows whose records the broker refused in the aborted try of this batch;
        ``visibility`` stages search index entries and retention (``None``: neither)."""
        self._routing = routing
        self._codecs = codecs
        self._versions = versions
        self._partition = partition
        self._partitions = partitions
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
        self._limits = limits
        self._refused = refused
        self._encoded: dict[str, tuple[WorkflowState, bytes, bytes]] = {}
        """Per workflow, its state and status as checked, so ``finish`` encodes neither again."""
        self.inputs = 0
        self.earliest_new_timer: int | None = None
        self.timers_added = 0
        """Timer index entries added minus removed by this batch."""
        self.started = 0
        """Workflows this batch began."""
        self.ended = 0
        """Workflows this batch brought to a final status."""
        self._visibility = visibility
        self.expired: list[str] = []
        """Workflows this batch removed at the end of their retention."""
        self.refusals: list[tuple[str | None, DlqReason, BaseException | str]] = []
        """Why each record this batch dead-lettered was refused: (workflow, reason, error)."""
        self.applied: list[Event] = []
        """The inputs this batch applied, in the order it applied them: a redriven record
        and those a redrive, a discard, a cancel or a terminate released from the park
        included; held and dead-lettered records left out."""

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
        if event.type is EventType.DISCARD_REQUESTED:
            self._discard(offset, key, value, event)
            return
        if event.type not in INPUT_TYPES:
            return  # a decision this processor appended; it is in the state already
        wid = event.workflow_id
        misplaced = self._misplaced(key, wid)
        if misplaced is not None:
            # Not parked: this partition is not the workflow's home, so a park here would
            # hold nothing that belongs to it; and where it is home (a keyless record that
            # landed right by chance), any producer's mistake would stall a sound workflow.
            # The record waits in the DLQ; a redrive puts it where murmur2 says.
            self._dead_letter(offset, key, value, misplaced[0], misplaced[1], wid)
            return
        if event.saga != self._routing.saga:
            reason = f"event names saga {event.saga!r}; this processor runs {self._routing.saga!r}"
            self._dead_letter(offset, key, value, DlqReason.UNKNOWN_SAGA, reason, wid)
            self._park(wid, DlqReason.UNKNOWN_SAGA, offset)
            return
        if self._is_parked(wid):
            if event.type not in ESCAPES:
                self.txn.set(held_key(wid, offset), value)
                return
            self._unpark(wid)
            self._release_held(wid)
        if wid in self._refused:
            reason = "the broker refused a record of this workflow (see the processor's log)"
            self._dead_letter(offset, key, value, DlqReason.RECORD_TOO_LARGE, reason, wid)
            self._park(wid, DlqReason.RECORD_TOO_LARGE, offset)
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
        too_large = self._accept(wid, state, transition)
        if too_large is not None and event.type is EventType.STEP_SUCCEEDED:
            # The result cannot be kept: the attempt fails for good instead, recorded in
            # the log as the processor's own step_failed, so compensation runs.
            failed = _result_refused(event, too_large, self._now_ms)
            try:
                transition = plan.handle(state, failed, self._now_ms)
            except Exception as exc:
                log.exception("failing step %s of workflow %s failed", event.step, wid)
                self._dead_letter(offset, key, value, DlqReason.PROCESSING_ERROR, exc, wid)
                self._park(wid, DlqReason.PROCESSING_ERROR, offset)
                return
            transition.decisions.insert(0, failed)
            too_large = self._accept(wid, state, transition)
        if too_large is not None:
            self._dead_letter(offset, key, value, DlqReason.RECORD_TOO_LARGE, too_large, wid)
            self._park(wid, DlqReason.RECORD_TOO_LARGE, offset)
            return
        self.applied.append(event)

    def _misplaced(self, key: bytes | None, wid: str) -> tuple[DlqReason, str] | None:
        """Why a record of workflow ``wid`` keyed ``key`` must not be applied on this
        partition, or ``None``: a workflow's records all sit on murmur2(workflow id)."""
        if key is None:
            return DlqReason.MISSING_KEY, f"a record of workflow {wid!r} has no key"
        if key != wid.encode():
            return DlqReason.KEY_MISMATCH, f"record key {key!r} is not workflow id {wid!r}"
        home = partition_for(key, self._partitions)
        if home != self._partition:
            return DlqReason.WRONG_PARTITION, (
                f"workflow {wid!r} belongs on partition {home} of {self._partitions}, "
                f"not {self._partition}"
            )
        return None

    def _redrive(self, offset: int, key: bytes | None, value: bytes, event: Event) -> None:
        wid = event.workflow_id
        try:
            original = base64.b64decode(json.loads(event.payload or "")["value"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            reason = f"a redrive must carry the record as base64 in payload 'value': {exc}"
            self._dead_letter(offset, key, value, DlqReason.UNAPPLICABLE, reason, wid)
            return
        position = dead_letter_position(event.payload)
        if position is not None:
            if self.txn.get(handled_key(position)) is not None:
                return  # redriven or discarded before: a second request changes nothing
            self.txn.set(handled_key(position), b"redriven")
        if self._is_parked(wid):
            self._unpark(wid)
        # The record first, then what arrived while the workflow waited, in log order;
        # should one of them park the workflow again, the rest stays held.
        self.apply_record(offset, wid.encode(), original)
        self._release_held(wid)

    def _discard(self, offset: int, key: bytes | None, value: bytes, event: Event) -> None:
        wid = event.workflow_id
        position = dead_letter_position(event.payload)
        if position is None:
            reason = "a discard must name the record: payload 'dlq_partition' and 'dlq_offset'"
            self._dead_letter(offset, key, value, DlqReason.UNAPPLICABLE, reason, wid)
            return
        if self.txn.get(handled_key(position)) is not None:
            return
        self.txn.set(handled_key(position), b"discarded")
        state = self._load(wid)
        audit = Event(
            event_id=f"{event.event_id}:0", workflow_id=wid, saga=self._routing.saga,
            version=state.version if state is not None else 0,
            type=EventType.DEAD_LETTER_DISCARDED, origin=Origin.PROCESSOR,
            time_ms=self._now_ms, payload=event.payload, cause=event.event_id,
        )  # fmt: skip
        self.outgoing.append(
            Outgoing(
                self._routing.events_topic, wid.encode(), self._codecs.event.encode(audit),
                self._partition, _DECISION_HEADERS,
            )
        )  # fmt: skip
        if self._is_parked(wid):
            self._unpark(wid)
            self._release_held(wid)

    def _unpark(self, wid: str) -> None:
        self.txn.delete(parked_key(wid))
        self._parked[wid] = False
        self.unparked.append(wid)
        state = self._load(wid)
        if state is not None:
            self._dirty.add(wid)  # its status record shows it no longer parked
            self._restore_timer_index(wid, state)

    def _release_held(self, wid: str) -> None:
        """Apply what arrived while ``wid`` was parked, in log order, until it parks again."""
        start = held_prefix(wid)
        stop = prefix_end(start)
        for held, held_value in list(self.txn.iter_range(start, stop)):
            if self._is_parked(wid):
                break
            self.txn.delete(held)
            self.apply_record(held_offset_of(held), wid.encode(), held_value)

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
        routing = self._routing
        for wid in self._dirty:
            state = self._states[wid]
            if state is None:
                continue
            parked = bool(self._parked.get(wid))
            encoded = self._encoded.get(wid)
            if encoded is not None and encoded[0] is state:
                data, status = encoded[1], encoded[2]
                if parked:
                    status = self._status_bytes(wid, state, parked=True)
            else:
                data, status = state.to_bytes(), self._status_bytes(wid, state, parked=parked)
            self.txn.set(WORKFLOW_PREFIX + wid.encode(), data)
            self.outgoing.append(Outgoing(routing.status_topic, wid.encode(), status))
            self._stage_timer_changes(wid, state)
            if self._visibility is not None:
                self._stage_visibility(self._visibility, state, parked)
        changelog = routing.changelog_topic
        partition = self._partition
        return [
            Outgoing(changelog, key, value, partition) for key, value in self.txn.changes().items()
        ]

    def _stage_visibility(
        self, visibility: VisibilityStaging, state: WorkflowState, parked: bool
    ) -> None:
        self._count_new_timer(visibility.stage(self.txn, state, parked=parked))

    def _count_new_timer(self, due: int | None) -> None:
        if due is not None:
            self.timers_added += 1
            if self.earliest_new_timer is None or due < self.earliest_new_timer:
                self.earliest_new_timer = due

    def _expire(self, visibility: VisibilityStaging, entry: TimerEntry) -> None:
        wid = entry.workflow_id
        self.txn.delete(entry.key)
        self.timers_added -= 1
        state = self._load(wid) if not self._is_parked(wid) else None
        if state is None or not state.status.is_final:
            return  # a parked workflow is kept until it is redriven and ends again
        self.outgoing.append(visibility.expire(self.txn, state, self._routing.status_topic))
        self._states[wid] = None
        self._dirty.discard(wid)
        self.expired.append(wid)

    def _fire(self, entry: TimerEntry) -> None:
        if self._visibility is not None and self._visibility.is_expiry(entry):
            self._expire(self._visibility, entry)
            return
        if self._visibility is not None and self._visibility.is_run_expiry(entry):
            self._visibility.expire_run(self.txn, entry)
            self.timers_added -= 1
            return
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
        too_large = self._accept(wid, state, transition)
        if too_large is not None:
            self.txn.delete(entry.key)
            self.timers_added -= 1
            self._park(wid, DlqReason.RECORD_TOO_LARGE, None)
            self._dead_letter(-1, wid.encode(), self._codecs.event.encode(fired),
                              DlqReason.RECORD_TOO_LARGE, too_large, wid)  # fmt: skip
            return
        if entry.timer_id in transition.state.timers:
            return
        # The index entry goes with the timer; the diff at finish() sees it gone too.
        self.txn.delete(entry.key)
        self.timers_added -= 1
        self._timers_at_load[wid].pop(entry.timer_id, None)

    def _accept(
        self, wid: str, before: WorkflowState | None, transition: Transition
    ) -> RecordTooLargeError | None:
        """Take ``transition`` unless one of its records (or the state or status it leaves)
        is too large for its topic: then nothing of it is taken and the error says why."""
        state = transition.state
        key = wid.encode()
        routing, codecs, partition = self._routing, self._codecs, self._partition
        out: list[Outgoing] = []
        for decision in transition.decisions:
            out.append(
                Outgoing(routing.events_topic, key, codecs.event.encode(decision), partition,
                         _DECISION_HEADERS)
            )  # fmt: skip
        for queue, command in command_records(transition, routing.events_topic):
            topic = routing.command_topic(queue)
            out.append(Outgoing(topic, key, codecs.command_for(topic).encode(command)))
        for event in transition.outbound:
            topic = routing.events_topic_of(event.saga)
            out.append(Outgoing(topic, event.workflow_id.encode(),
                                codecs.event_for(topic).encode(event)))  # fmt: skip
        if self._limits is not None:
            too_large = self._check(wid, state, out)
            if too_large is not None:
                return too_large
        decisions = transition.decisions
        if before is not None and decisions and all(d.type in NO_TRACE for d in decisions):
            # A duplicate start: recorded in the log, the workflow and its status untouched.
            # (An input that decides nothing may still change the state: it is kept.)
            self.outgoing.extend(out)
            return None
        self._states[wid] = state
        self._dirty.add(wid)
        self.outgoing.extend(out)
        if self._visibility is not None:
            for ended in transition.ended_runs:
                self._count_new_timer(self._visibility.keep_run(self.txn, ended))
        if before is None and state is not None:
            self.started += 1
            self._metrics.workflow_started(routing.saga)
        if (
            state is not None
            and state.status.is_final
            and (before is None or not before.status.is_final)
        ):
            self.ended += 1
            self._metrics.workflow_ended(routing.saga, state.status.value)
        return None

    def _check(
        self, wid: str, state: WorkflowState | None, out: list[Outgoing]
    ) -> RecordTooLargeError | None:
        assert self._limits is not None
        limits, saga = self._limits, self._routing.saga
        for record in out:
            excess = limits.excess(record.topic, record.key, record.value, record.headers)
            if excess is not None:
                return RecordTooLargeError(
                    "a record the workflow would write", topic=record.topic, size=excess[0],
                    limit=excess[1], saga=saga, workflow_id=wid,
                )  # fmt: skip
        if state is None:
            return None
        # The changelog and status records carry the whole state (input and results), so
        # the state is what grows past the limit, not any single event.
        data = state.to_bytes()
        store_key = WORKFLOW_PREFIX + wid.encode()
        topic = self._routing.changelog_topic
        excess = limits.excess(topic, store_key, data)
        if excess is None:
            status = self._status_bytes(wid, state, parked=False)
            topic = self._routing.status_topic
            excess = limits.excess(topic, wid.encode(), status)
            if excess is None:
                self._encoded[wid] = (state, data, status)
                return None
        return RecordTooLargeError(
            "the workflow's state (its input and step results)", topic=topic, size=excess[0],
            limit=excess[1], saga=saga, workflow_id=wid,
        )  # fmt: skip

    def _status_bytes(self, wid: str, state: WorkflowState, *, parked: bool) -> bytes:
        plan = self._versions.plans.get(state.version)
        status = state.status_record() if plan is None else plan.status_record(state)
        if parked:
            status = replace(status, parked=True)
        return self._codecs.status.encode(status)

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
            # workflow_key() inline: this runs for every input, on an id already checked.
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
        self.refusals.append((wid, reason, exception))
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
                max_bytes=(
                    self._limits.limit(self._routing.dlq_topic)
                    if self._limits is not None
                    else None
                ),
            )
        )


def _text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


def _result_refused(answer: Event, error: RecordTooLargeError, now_ms: int) -> Event:
    """The processor's ``step_failed`` that takes the place of a result too large to keep."""
    return Event(
        event_id=f"{answer.event_id}/refused",
        workflow_id=answer.workflow_id,
        saga=answer.saga,
        version=answer.version,
        type=EventType.STEP_FAILED,
        origin=Origin.PROCESSOR,
        time_ms=now_ms,
        step=answer.step,
        attempt=answer.attempt,
        error=ErrorInfo(RESULT_TOO_LARGE, str(error), non_retryable=True),
    )
