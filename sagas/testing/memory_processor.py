"""One saga's processor in memory: the runtime's per-partition core over the memory store.

The test kit runs every input through :class:`~processors.saga_batch.PartitionBatch`, the
core the saga processor runs for each polled batch, on a
:class:`~processors.store.memory.MemoryPartitionStore` and with the real codecs; only the
Kafka I/O around it is replaced. A batch's records are committed here as the processor's
checkpoint commits them (records out, then the staged store write) and handed back, by
kind, for the environment to route: decisions are appended to this saga's in-memory
event log, inputs for other logs, commands, status records and dead letters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from processors.metrics import Metrics
from processors.saga_batch import Codecs, PartitionBatch
from processors.saga_processor import routing_for
from processors.store.keys import (
    WORKFLOW_PREFIX,
    TimerEntry,
    parked_key,
    prefix_end,
    workflow_key,
)
from processors.store.memory import MemoryPartitionStore
from processors.store.timers import due_timers
from processors.visibility_staging import VisibilityStaging, earlier_runs
from sagas.client.dead_letters import DeadLetter
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.events import Command, Event, StatusRecord
from schemas.codecs import CommandCodec, EventCodec, StatusCodec
from topics.dead_letter_headers import DlqReason, decode_headers
from topics.record_limits import RecordLimits

_PARTITION = 0
"""Every workflow of a saga lives on one partition here: murmur2 of any key over one."""
_LATEST = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of a saga's in-memory event log, as a consumer would read it."""

    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A record the core dead-lettered, with the error it was refused for."""

    workflow_id: str | None
    reason: DlqReason
    error: BaseException | str


@dataclass(slots=True)
class BatchResult:
    """What one committed batch produced, sorted by where it goes."""

    decisions: list[Event] = field(default_factory=list)
    """Appended to this saga's log (already there when the result is returned)."""
    inputs: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    """(events topic, key, value) of inputs for a log: child workflows, parents."""
    commands: list[Command] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    """Workflows whose state the batch changed."""
    applied: list[Event] = field(default_factory=list)
    """The inputs the batch applied, in order: its record unless held or refused, the
    record a redrive carries, the held records a redrive, discard, cancel or terminate
    released from a park."""


class MemoryProcessor:
    """The saga processor of one saga (all its versions) on one in-memory partition."""

    def __init__(
        self,
        versions: SagaVersions,
        metrics: Metrics,
        *,
        events_topic_saga: Callable[[str], str | None],
    ) -> None:
        """``events_topic_saga`` names the saga whose event log a topic is (or ``None``)."""
        self.versions = versions
        self.routing = routing_for(versions, "")
        events, commands = EventCodec(), CommandCodec()
        self.codecs = Codecs(
            event=events,
            status=StatusCodec(),
            command_for=lambda topic: commands,
            event_for=lambda topic: events,
        )
        self._metrics = metrics
        self._events_topic_saga = events_topic_saga
        self.store = MemoryPartitionStore(_PARTITION)
        self.log: list[LogRecord] = []
        self.statuses: dict[str, StatusRecord] = {}
        """The status topic as a compacted reader would hold it."""
        self.dead_letters: list[DeadLetter] = []
        self._cache: dict[str, WorkflowState] = {}
        self._parked: set[str] = set()
        self._visibility = VisibilityStaging(versions)
        self._limits = RecordLimits()
        self._changelog_offset = -1

    def append(self, record: LogRecord) -> int:
        """Append a record to the saga's event log; its offset."""
        self.log.append(record)
        return len(self.log) - 1

    def apply(self, offset: int, now_ms: int) -> BatchResult:
        """Run one batch holding the log's record at ``offset``, and commit it."""
        batch = self._batch(now_ms)
        record = self.log[offset]
        batch.apply_record(offset, record.key, record.value)
        return self._commit(batch)

    def fire_next(self, now_ms: int) -> BatchResult:
        """Run one batch that fires the first timer due at ``now_ms``, and commit it."""
        batch = self._batch(now_ms)
        batch.fire_due_timers(1)
        return self._commit(batch)

    def next_timer(self) -> TimerEntry | None:
        """The earliest entry of the due-time index (a stale one included)."""
        entries = due_timers(self.store, _LATEST, 1)
        return entries[0][0] if entries else None

    def state(self, workflow_id: str) -> WorkflowState | None:
        """A workflow's state as the store holds it."""
        data = self.store.get(workflow_key(workflow_id))
        return WorkflowState.from_bytes(data) if data is not None else None

    def runs(self, workflow_id: str) -> list[WorkflowState]:
        """The earlier runs of a workflow that continued as new the store keeps, latest first."""
        return earlier_runs(self.store, workflow_id)

    def workflow_ids(self) -> list[str]:
        """Every workflow whose state the store holds."""
        return [state.workflow_id for state in self._states()]

    def put_state(self, state: WorkflowState) -> None:
        """Write a workflow's state and its timers into the store, as a restore would."""
        changes: dict[bytes, bytes | None] = {workflow_key(state.workflow_id): state.to_bytes()}
        old = self.state(state.workflow_id)
        for timer_id, due in (old.timers if old is not None else {}).items():
            changes[TimerEntry(due, state.workflow_id, timer_id).key] = None
        for timer_id, due in state.timers.items():
            changes[TimerEntry(due, state.workflow_id, timer_id).key] = b""
        self.store.write(changes)
        self._cache.pop(state.workflow_id, None)

    def is_parked(self, workflow_id: str) -> bool:
        """Whether the workflow is parked (its later inputs held until a redrive)."""
        return self.store.get(parked_key(workflow_id)) is not None

    def holds(self, workflow_id: str) -> bool:
        """Whether the store holds the workflow's state."""
        return self.store.get(workflow_key(workflow_id)) is not None

    def _states(self) -> list[WorkflowState]:
        found = self.store.iter_range(WORKFLOW_PREFIX, prefix_end(WORKFLOW_PREFIX))
        return [WorkflowState.from_bytes(value) for _, value in found]

    def _batch(self, now_ms: int) -> PartitionBatch:
        return PartitionBatch(
            routing=self.routing,
            codecs=self.codecs,
            versions=self.versions,
            store=self.store,
            partition=_PARTITION,
            partitions=1,
            now_ms=now_ms,
            metrics=self._metrics,
            cache=self._cache,
            parked=self._parked,
            limits=self._limits,
            visibility=self._visibility,
        )

    def _commit(self, batch: PartitionBatch) -> BatchResult:
        """Route the batch's records, then write the store: the checkpoint's order."""
        changelog = batch.finish()
        result = BatchResult(
            refusals=[Refusal(wid, reason, error) for wid, reason, error in batch.refusals],
            changed=set(batch.changed_states()) | set(batch.expired),
            applied=batch.applied,
        )
        routing = self.routing
        for record in batch.outgoing:
            topic = record.topic
            if topic == routing.status_topic:
                wid = (record.key or b"").decode()
                if record.value is None:
                    self.statuses.pop(wid, None)
                else:
                    self.statuses[wid] = self.codecs.status.decode(record.value)
            elif topic == routing.dlq_topic:
                self.dead_letters.append(
                    DeadLetter(
                        _PARTITION,
                        len(self.dead_letters),
                        record.key,
                        record.value,
                        decode_headers(list(record.headers or ())),
                    )
                )
            elif self._events_topic_saga(topic) is not None:
                # Decisions go to this saga's own partition; events for other workflows
                # (child starts, a parent's news) are left to the partitioner.
                assert record.key is not None
                assert record.value is not None
                event = self.codecs.event_for(topic).decode(record.value)
                if topic == routing.events_topic and record.partition == _PARTITION:
                    self.append(LogRecord(record.key, record.value))
                    result.decisions.append(event)
                else:
                    result.inputs.append((topic, record.key, record.value))
            else:
                assert record.value is not None
                result.commands.append(self.codecs.command_for(topic).decode(record.value))
        self._changelog_offset += len(changelog)
        batch.txn.commit(self._changelog_offset if changelog else None)
        for wid, state in batch.changed_states().items():
            self._cache[wid] = state
        for wid in batch.expired:
            self._cache.pop(wid, None)
        self._parked.difference_update(batch.unparked)
        self._parked.update(batch.newly_parked)
        return result
