"""The saga processor's per-partition core against the fold, under any sequence of inputs.

A hypothesis state machine drives :class:`PartitionBatch` on the memory store (through
the test kit's in-memory processor, the real codecs included) with starts, answers that
succeed, fail, come twice or come late, timer advances, signals, cancels, terminations
and poison records. After every step, each workflow's state in the store equals the
plan's fold of the events it committed, the due-time index holds exactly its timers; and
once a workflow has compensated, every
completed compensable step was compensated exactly once, latest first.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from pydantic import BaseModel

from processors.metrics import Metrics
from processors.store.keys import TIMER_PREFIX, parse_timer_key, prefix_end
from sagas import Retry, Saga, StepContext
from sagas.engine.execution import answer_event
from sagas.engine.versions import compile_versions
from sagas.events import Command, CommandKind, ErrorInfo, Event, EventType, Origin, WorkflowStatus
from sagas.log_order import ignored_positions, processing_order
from sagas.testing.memory_processor import BatchResult, LogRecord, MemoryProcessor
from topics.naming import TopicNames

SECOND = timedelta(seconds=1)
WORKFLOWS = ("wf-a", "wf-b")


class Order(BaseModel):
    """What the saga works on."""

    n: int = 0


def _undo(ctx: StepContext[Order]) -> None:
    return None


def machine_saga() -> Saga[Order]:
    saga = Saga("machine", input=Order)
    for name in ("reserve", "charge"):
        saga.step(name=name, timeout=SECOND * 5, retry=Retry(max_attempts=3))(
            lambda ctx: None
        ).compensation(_undo, retry=Retry(max_attempts=None, initial_interval=SECOND))
    saga.wait_for("go", timeout=timedelta(minutes=5))
    saga.step(name="ship", timeout=SECOND * 5, retry=Retry(max_attempts=2))(
        lambda ctx: None
    ).compensation(_undo, retry=Retry(max_attempts=None, initial_interval=SECOND))
    return saga


VERSIONS = compile_versions(machine_saga())
PLAN = VERSIONS.newest
EVENTS_TOPIC = TopicNames("machine").events


class CoreMachine(RuleBasedStateMachine):
    """Inputs to one partition of the ``machine`` saga, checked against the fold."""

    @initialize()
    def open(self) -> None:
        self.core = MemoryProcessor(
            VERSIONS,
            Metrics(),
            events_topic_saga=lambda t: "machine" if t == EVENTS_TOPIC else None,
        )
        self.now = 1_000_000
        self.ids = 0
        self.pending: list[Command] = []
        self.answered: list[Event] = []
        self.histories: dict[str, list[Event]] = {}
        for wid in WORKFLOWS:
            self.start(wid)

    def _take(self, result: BatchResult) -> None:
        for e in [*result.applied, *result.decisions]:
            self.histories.setdefault(e.workflow_id, []).append(e)
        for wid in {e.workflow_id for e in result.applied}:
            self.histories[wid] = processing_order(self.histories[wid])
        self.pending.extend(result.commands)

    def _deliver(self, workflow_id: str, value: bytes) -> None:
        record = LogRecord(workflow_id.encode(), value)
        self._take(self.core.apply(self.core.append(record), self.now))

    def _send(self, workflow_id: str, type_: EventType, **fields: object) -> None:
        self.ids += 1
        event = Event(
            event_id=f"in-{self.ids}", workflow_id=workflow_id, saga="machine", version=0,
            type=type_, origin=Origin.CLIENT, time_ms=self.now, **fields,  # type: ignore[arg-type]
        )  # fmt: skip
        self._deliver(workflow_id, self.core.codecs.event.encode(event))

    @rule(wid=st.sampled_from(WORKFLOWS))
    def start(self, wid: str) -> None:
        self._send(wid, EventType.START_REQUESTED, payload=Order(n=1).model_dump_json())

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), outcome=st.sampled_from(["ok", "ok", "fail", "fatal"]))
    def answer(self, data: st.DataObject, outcome: str) -> None:
        command = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        if outcome == "ok":
            payload = "null" if command.kind is CommandKind.ACTION else None
            answer = answer_event(command, time_ms=self.now, payload=payload)
        else:
            # A compensation only ever fails retryably here: it retries until it succeeds.
            fatal = outcome == "fatal" and command.kind is CommandKind.ACTION
            error = ErrorInfo("Boom", "it failed", non_retryable=fatal)
            answer = answer_event(command, time_ms=self.now, error=error)
        self.answered.append(answer)
        self._deliver(command.workflow_id, self.core.codecs.event.encode(answer))

    @precondition(lambda self: self.pending)
    @rule()
    def answer_every_pending_command(self) -> None:
        """Workers answer every command, successfully, until the workflows wait."""
        while self.pending:
            command = self.pending.pop(0)
            payload = "null" if command.kind is CommandKind.ACTION else None
            answer = answer_event(command, time_ms=self.now, payload=payload)
            self.answered.append(answer)
            self._deliver(command.workflow_id, self.core.codecs.event.encode(answer))

    @precondition(lambda self: self.answered)
    @rule(data=st.data())
    def answer_again(self, data: st.DataObject) -> None:
        """A duplicate, or a late answer to an attempt the saga has moved past."""
        answer = data.draw(st.sampled_from(self.answered))
        self._deliver(answer.workflow_id, self.core.codecs.event.encode(answer))

    @rule(ms=st.integers(0, 400_000))
    def advance(self, ms: int) -> None:
        target = self.now + ms
        while (entry := self.core.next_timer()) is not None and entry.due_ms <= target:
            self.now = max(self.now, entry.due_ms)
            self._take(self.core.fire_next(self.now))
        self.now = target

    @rule(wid=st.sampled_from(WORKFLOWS), name=st.sampled_from(["go", "go", "bogus"]))
    def signal(self, wid: str, name: str) -> None:
        self._send(wid, EventType.SIGNAL, name=name, payload="{}")

    @rule(wid=st.sampled_from(WORKFLOWS))
    def cancel(self, wid: str) -> None:
        self._send(wid, EventType.CANCEL_REQUESTED, error=ErrorInfo("CancelRequested", "no"))

    @rule(wid=st.sampled_from(WORKFLOWS))
    def terminate(self, wid: str) -> None:
        self._send(wid, EventType.TERMINATE_REQUESTED, error=ErrorInfo("TerminateRequested", "x"))

    @rule(wid=st.sampled_from(WORKFLOWS), junk=st.binary(max_size=8))
    def poison(self, wid: str, junk: bytes) -> None:
        self._deliver(wid, b"\xff" + junk)

    @invariant()
    def state_is_the_fold_of_the_committed_events(self) -> None:
        for wid in WORKFLOWS:
            state = self.core.state(wid)
            folded = PLAN.fold(self.histories.get(wid, []))
            if state is None:
                assert folded is None, f"{wid}: the log starts a workflow the store lacks"
                continue
            assert folded is not None, f"{wid}: the store holds a workflow its log never started"
            assert folded.to_bytes() == state.to_bytes(), f"{wid}: store and fold differ"

    @invariant()
    def the_timer_index_holds_each_running_workflows_timers(self) -> None:
        indexed: dict[str, set[tuple[str, int]]] = {}
        for key, _ in self.core.store.iter_range(TIMER_PREFIX, prefix_end(TIMER_PREFIX)):
            entry = parse_timer_key(key)
            indexed.setdefault(entry.workflow_id, set()).add((entry.timer_id, entry.due_ms))
        for wid in WORKFLOWS:
            state = self.core.state(wid)
            if state is None or self.core.is_parked(wid):
                continue  # a parked workflow's timers come back from its state on redrive
            assert indexed.get(wid, set()) == set(state.timers.items()), f"{wid}: timer index"

    @invariant()
    def compensation_undoes_each_completed_step_once_latest_first(self) -> None:
        for wid in WORKFLOWS:
            state = self.core.state(wid)
            if state is None or state.status not in (
                WorkflowStatus.COMPENSATED,
                WorkflowStatus.CANCELLED,
            ):
                continue
            history = self.histories[wid]
            ignored = ignored_positions(history)
            applied = [e for i, e in enumerate(history) if i not in ignored]
            completed = [e.step for e in applied if e.type is EventType.STEP_SUCCEEDED]
            undone = [e.step for e in applied if e.type is EventType.COMPENSATION_SUCCEEDED]
            assert undone == completed[::-1], f"{wid}: completed {completed}, undone {undone}"
            event(f"compensated after {len(completed)} completed steps")


def _saga_of_topic(topic: str) -> str | None:
    return "machine" if topic == EVENTS_TOPIC else None


CoreMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_core_agrees_with_the_fold = CoreMachine.TestCase
