"""An in-memory runtime for testing sagas with pytest: no broker, and a clock that skips.

It runs the saga processor's own per-partition core (:class:`PartitionBatch` on the
memory store, through the real codecs) and the step worker's own step execution
(``run_command``), with Kafka's part played in memory: an event log per saga, and the
batch's commands, status records and dead letters routed to where a broker would take
them. So a test sees what production does, dead letters and parked workflows included::

    with SagaTestEnvironment(saga) as env:
        env.fail("create_shipment", non_retryable=True)
        wf = env.start(OrderInput(order_id="o-1", ...))
        assert env.status(wf).status is WorkflowStatus.COMPENSATED
        assert env.compensated(wf) == ["reserve_inventory", "charge_payment"]

Calls are synchronous: each one runs the workflows until they wait (for an
answer that an injected time-out withholds, a timer or a signal). Async actions
run on one event loop the environment owns, so it cannot be used from inside a
running loop (an ``async def`` test). A record the core refuses (dead-letters) while a
call runs raises its error from that call, as a failed client request would, and
parks its workflow as on the broker; :meth:`~SagaTestEnvironment.deliver_raw` puts any
bytes on a log, raising nothing, for tests of poison records.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any

from pydantic import BaseModel, TypeAdapter

from processors.metrics import Metrics
from processors.search_index import SearchIndex
from processors.store.keys import TimerEntry
from sagas.client.dead_letters import DeadLetter
from sagas.definition import Saga
from sagas.engine.execution import HeartbeatSender, answer_event, run_command
from sagas.engine.plan import Plan
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.errors import SagaError, UpdateRejectedError
from sagas.events import (
    Command,
    CommandKind,
    ErrorInfo,
    Event,
    EventType,
    Origin,
    StatusRecord,
    WorkflowStatus,
)
from sagas.log_order import ignored_positions, processing_order
from sagas.testing.handover import Handover
from sagas.testing.memory_processor import BatchResult, LogRecord, MemoryProcessor, Refusal
from sagas.visibility import SearchValue
from topics.naming import TopicNames

_ANY: TypeAdapter[Any] = TypeAdapter(Any)


class Fault(StrEnum):
    """A failure the environment can inject in place of a command's normal answer."""

    FAIL = "fail"
    """Answer failed (retryable) without running the function."""
    NON_RETRYABLE = "non_retryable"
    """Answer failed with a non-retryable error without running the function."""
    TIME_OUT = "time_out"
    """Never answer, so that the attempt's timeout fires."""
    DELIVER_TWICE = "deliver_twice"
    """Run the function once and deliver its answer twice."""
    RUN_TWICE = "run_twice"
    """Deliver the command twice (at-least-once delivery): the function runs twice with
    the same idempotency key and both answers arrive."""
    CRASH = "crash"
    """The worker dies while the function runs (at its heartbeat after ``after_heartbeats``):
    the heartbeats sent so far stay in the log, no answer comes, and the command is
    delivered again to the worker that takes the partition over."""


class _WorkerKilled(BaseException):
    """Stops a function at an injected crash; not an Exception, so no answer is made of it."""


@dataclass(frozen=True, slots=True)
class Injection:
    """One injected fault: for which step, kind of command and attempts."""

    step: str
    fault: Fault
    attempts: frozenset[int] | None
    kind: CommandKind
    workflow_id: str | None
    after_heartbeats: int | None = None
    handover_ms: int = 0
    """For a crash: how long until another worker has the dead worker's partition."""

    def matches(self, command: Command) -> bool:
        return (
            command.step == self.step
            and command.kind is self.kind
            and (self.attempts is None or command.attempt in self.attempts)
            and (self.workflow_id is None or command.workflow_id == self.workflow_id)
        )


@dataclass(frozen=True, slots=True)
class Execution:
    """A call of a user function that the environment made."""

    workflow_id: str
    step: str
    kind: CommandKind
    attempt: int
    idempotency_key: str
    deadline_ms: int | None = None
    """When the worker gives the call up: the command's deadline (None: none)."""


class SagaTestEnvironment:
    """Runs sagas in memory on the runtime's own core, with a virtual clock.

    Pass the saga under test first, then any child sagas it starts (or several
    versions of one saga). Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        *sagas: Saga[Any] | SagaVersions | Iterable[Saga[Any]],
        start_ms: int = 1_767_225_600_000,
        auto_signals: Mapping[str, Any] | None = None,
        check_replay: bool = True,
    ) -> None:
        if not sagas:
            raise SagaError("SagaTestEnvironment needs at least one saga")
        self.registry: dict[str, SagaVersions] = {}
        for item in sagas:
            versions = compile_versions(item)
            self.registry[versions.name] = versions
        self.default_saga = compile_versions(sagas[0]).name
        self.now_ms = start_ms
        self.auto_signals = dict(auto_signals or {})
        self.check_replay = check_replay
        metrics = Metrics()
        self._topics = {TopicNames(name).events: name for name in self.registry}
        self.processors: dict[str, MemoryProcessor] = {
            name: MemoryProcessor(versions, metrics, events_topic_saga=self._topics.get)
            for name, versions in self.registry.items()
        }
        self.states = _States(self)
        """Each workflow's state as its processor's store holds it (writable, for tests
        that put a workflow in place)."""
        self.histories: dict[str, list[Event]] = {}
        self.executions: list[Execution] = []
        self.injections: list[Injection] = []
        self._inbox: deque[tuple[str, LogRecord]] = deque()
        self._commands: deque[Command] = deque()
        self._handovers: list[Handover] = []
        self._survivors: set[str] = set()
        """Ids of the commands delivered again after a crash, which no crash hits again."""
        self._refusals: list[Refusal] = []
        self._ids = itertools.count(1)
        self._runner = asyncio.Runner()

    def __enter__(self) -> SagaTestEnvironment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the event loop the environment runs async actions on."""
        self._runner.close()

    def inject(
        self,
        step: str,
        fault: Fault,
        *,
        attempts: Iterable[int] | None = None,
        compensation: bool = False,
        workflow_id: str | None = None,
    ) -> None:
        """Make commands of ``step`` (all attempts unless ``attempts``) hit ``fault``."""
        kind = CommandKind.COMPENSATE if compensation else CommandKind.ACTION
        self.injections.append(
            Injection(
                step, fault, None if attempts is None else frozenset(attempts), kind, workflow_id
            )
        )

    def fail(
        self,
        step: str,
        *,
        attempts: Iterable[int] | None = None,
        non_retryable: bool = False,
        compensation: bool = False,
    ) -> None:
        """Make ``step`` (or its compensation) fail on the given attempts (default: all)."""
        fault = Fault.NON_RETRYABLE if non_retryable else Fault.FAIL
        self.inject(step, fault, attempts=attempts, compensation=compensation)

    def time_out(
        self, step: str, *, attempts: Iterable[int] | None = None, compensation: bool = False
    ) -> None:
        """Make ``step`` (or its compensation) never answer on the given attempts (nor report
        them started: a step with ``schedule_to_start`` sees no worker take them)."""
        self.inject(step, Fault.TIME_OUT, attempts=attempts, compensation=compensation)

    def deliver_twice(
        self, step: str, *, attempts: Iterable[int] | None = None, compensation: bool = False
    ) -> None:
        """Deliver the answer of ``step`` (or its compensation) twice."""
        self.inject(step, Fault.DELIVER_TWICE, attempts=attempts, compensation=compensation)

    def crash(
        self,
        step: str,
        *,
        after_heartbeats: int,
        attempts: Iterable[int] | None = None,
        handover: timedelta = timedelta(seconds=10),
    ) -> None:
        """Kill the worker running ``step`` at its heartbeat after ``after_heartbeats``.

        Those heartbeats reach the saga, the answer never comes. As on the broker, where
        the killed worker never committed the command's offset, the command is delivered
        again to the worker that takes the partition over, ``handover`` later (the step
        workers' session timeout, 10 s; ``timedelta(0)`` for a worker restarted at once
        under its own instance id), with the workflow's commands sent meanwhile. That
        worker runs the command again, from the beginning (so an effect without the
        idempotency key happens twice), unless a later attempt of the step is among
        them: then the killed attempt is skipped and the later one runs, resuming from
        the heartbeat details. A crash kills a worker once per command: the redelivery
        is not killed again.
        """
        self.injections.append(
            Injection(
                step,
                Fault.CRASH,
                None if attempts is None else frozenset(attempts),
                CommandKind.ACTION,
                None,
                after_heartbeats,
                handover // timedelta(milliseconds=1),
            )
        )

    def start(
        self,
        input: BaseModel,
        *,
        workflow_id: str | None = None,
        saga: str | None = None,
        version: int = 0,
    ) -> str:
        """Start a workflow (newest version unless ``version``) and run it until it waits."""
        name = saga or self.default_saga
        workflow_id = workflow_id or f"{name}-{next(self._ids)}"
        self._send(
            self._client_event(
                name,
                workflow_id,
                EventType.START_REQUESTED,
                version=version,
                payload=input.model_dump_json(),
            )
        )
        return workflow_id

    def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Send a signal (a pydantic model, any JSON-able value, or None) to a workflow."""
        self._send(
            self._client_event(
                self._saga_of(workflow_id),
                workflow_id,
                EventType.SIGNAL,
                name=name,
                payload=_json(payload),
            )
        )

    def signal_with_start(
        self,
        input: BaseModel,
        name: str,
        payload: Any = None,
        *,
        workflow_id: str,
        saga: str | None = None,
    ) -> str:
        """Start the workflow unless it exists and deliver signal ``name``, as one record."""
        saga_name = saga or self._saga_of(workflow_id)
        both = {"input": json.loads(input.model_dump_json()), "signal": _jsonable(payload)}
        self._send(
            self._client_event(
                saga_name,
                workflow_id,
                EventType.SIGNAL_WITH_START,
                name=name,
                payload=json.dumps(both),
            )
        )
        return workflow_id

    def update(
        self, workflow_id: str, name: str, payload: Any, *, update_id: str | None = None
    ) -> Any:
        """Apply update ``name`` and return its handler's result (JSON form), as
        ``client.update`` does; raises ``UpdateRejectedError`` when the workflow refuses it."""
        event = self._client_event(
            self._saga_of(workflow_id),
            workflow_id,
            EventType.UPDATE_REQUESTED,
            name=name,
            payload=json.dumps(_jsonable(payload)),
        )
        if update_id is not None:
            event = replace(event, event_id=update_id)
        self._send(event)
        for decided in reversed(self.histories.get(workflow_id, [])):
            if decided.cause != event.event_id:
                continue
            if decided.type is EventType.UPDATE_COMPLETED:
                return json.loads(decided.payload or "{}").get("result")
            if decided.type is EventType.UPDATE_REJECTED and decided.error is not None:
                raise UpdateRejectedError(
                    decided.error.message,
                    reason=decided.error.type,
                    workflow_id=workflow_id,
                    step=name,
                )
        raise SagaError("the update got no answer", workflow_id=workflow_id, step=name)

    def cancel(self, workflow_id: str, reason: str = "cancelled") -> None:
        """Ask a workflow to cancel (compensating what it completed)."""
        self._send(
            self._client_event(
                self._saga_of(workflow_id),
                workflow_id,
                EventType.CANCEL_REQUESTED,
                error=ErrorInfo("CancelRequested", reason),
            )
        )

    def terminate(self, workflow_id: str, reason: str = "terminated") -> None:
        """Stop a workflow at once, without compensation."""
        self._send(
            self._client_event(
                self._saga_of(workflow_id),
                workflow_id,
                EventType.TERMINATE_REQUESTED,
                error=ErrorInfo("TerminateRequested", reason),
            )
        )

    def deliver_raw(
        self, key: bytes | None, value: bytes | None, *, saga: str | None = None
    ) -> None:
        """Put a record, any bytes, on a saga's event log as a producer would, and run it.

        For tests of poison records: what the core refuses goes to the DLQ
        (:meth:`dead_letters`) and parks its workflow (:meth:`parked`), raising nothing.
        """
        self._inbox.append((saga or self.default_saga, LogRecord(key, value)))
        self._drain()
        self._refusals.clear()

    def dead_letters(self, saga: str | None = None) -> list[DeadLetter]:
        """The records of the saga's DLQ, oldest first, with the headers saying why."""
        return list(self._processor(saga or self.default_saga).dead_letters)

    def parked(self, workflow_id: str) -> bool:
        """Whether the workflow is parked: a record of it was dead-lettered, and its later
        inputs are held until a redrive."""
        return self._processor(self._saga_of(workflow_id)).is_parked(workflow_id)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``, firing every timer that falls due on the way."""
        target = self.now_ms + delta // timedelta(milliseconds=1)
        while True:
            due = self._next_due_ms()
            if due is None or due > target:
                break
            self._fire_next()
        self.now_ms = target

    def run_until_complete(
        self, workflow_id: str, *, within: timedelta = timedelta(days=3650)
    ) -> StatusRecord:
        """Skip time from timer to timer until the workflow ends; its final status.

        Raises ``SagaError`` if it waits for something no timer brings (a signal,
        a missing answer, a redrive of its parked record) or does not end ``within``
        the given span.
        """
        limit = self.now_ms + within // timedelta(milliseconds=1)
        while not self._state(workflow_id).status.is_final:
            if self.parked(workflow_id):
                raise SagaError(
                    "the workflow is parked: a record of it is in the DLQ "
                    f"({self._dead_letter_of(workflow_id)})",
                    saga=self._saga_of(workflow_id),
                    workflow_id=workflow_id,
                )
            due = self._next_due_ms()
            if due is None or due > limit:
                raise SagaError(
                    "the workflow waits for something no timer will bring "
                    f"(timers: {self._state(workflow_id).timers})",
                    saga=self._saga_of(workflow_id),
                    workflow_id=workflow_id,
                )
            self._fire_next()
        return self.status(workflow_id)

    def status(self, workflow_id: str) -> StatusRecord:
        """The workflow's status record, as the status topic holds it."""
        self._state(workflow_id)
        record = self._processor(self._saga_of(workflow_id)).statuses.get(workflow_id)
        if record is None:
            state = self._state(workflow_id)
            return self._plan(state).status_record(state)
        return record

    def runs(self, workflow_id: str) -> list[WorkflowState]:
        """The runs the workflow continued as new from, latest first, each as it ended; kept
        for the saga's retention of ended workflows, then removed (as ``client.describe``
        shows them under ``runs``)."""
        return self._processor(self._saga_of(workflow_id)).runs(workflow_id)

    def search_attributes(self, workflow_id: str) -> dict[str, SearchValue]:
        """The search attributes the workflow is listed by, as ``client.describe`` shows
        them: those read from its input, then those its steps set."""
        state = self._state(workflow_id)
        return SearchIndex(self.registry[state.saga]).attributes_of(state)

    def result(self, workflow_id: str) -> dict[str, Any]:
        """The decoded result object of a completed workflow (step name -> result)."""
        state = self._state(workflow_id)
        if state.status is not WorkflowStatus.COMPLETED or state.result is None:
            raise SagaError(
                f"the workflow is {state.status.value}, not COMPLETED", workflow_id=workflow_id
            )
        value: dict[str, Any] = json.loads(state.result)
        return value

    def result_of(self, workflow_id: str, step: str) -> Any:
        """A step's result, typed as the step declares it."""
        state = self._state(workflow_id)
        run = state.steps.get(step)
        if run is None or run.result is None:
            raise SagaError(f"step {step!r} has no result", workflow_id=workflow_id, step=step)
        return self._plan(state).types.parse_result(step, json.loads(run.result))

    def history(self, workflow_id: str) -> list[Event]:
        """Every event of the workflow's log that its processor applied or decided, in order."""
        return list(self.histories[workflow_id])

    def event_types(self, workflow_id: str) -> list[EventType]:
        """The types of the workflow's events, in order."""
        return [event.type for event in self.histories[workflow_id]]

    def compensated(self, workflow_id: str) -> list[str]:
        """The steps whose compensation succeeded, in order."""
        history = self.histories[workflow_id]
        ignored = ignored_positions(history)
        return [
            event.step or ""
            for i, event in enumerate(history)
            if event.type is EventType.COMPENSATION_SUCCEEDED and i not in ignored
        ]

    def executed(self, workflow_id: str, kind: CommandKind = CommandKind.ACTION) -> list[str]:
        """The steps whose function ran for this workflow (one entry per run), in order."""
        return [x.step for x in self.executions if x.workflow_id == workflow_id and x.kind is kind]

    def replay(self, workflow_id: str) -> WorkflowState:
        """Rebuild the state from the log; raises ``AssertionError`` if it differs from live."""
        state = self._state(workflow_id)
        rebuilt = self._plan(state).fold(self.histories.get(workflow_id, []))
        if rebuilt is None or rebuilt.to_bytes() != state.to_bytes():
            replayed = None if rebuilt is None else rebuilt.to_bytes()
            raise AssertionError(
                f"replaying the log of {workflow_id!r} gives another state:\n"
                f"live:   {state.to_bytes()!r}\nreplay: {replayed!r}"
            )
        return rebuilt

    def _state(self, workflow_id: str) -> WorkflowState:
        state = self._processor(self._saga_of(workflow_id)).state(workflow_id)
        if state is None:
            raise SagaError("no workflow with this id", workflow_id=workflow_id)
        return state

    def _processor(self, saga: str) -> MemoryProcessor:
        try:
            return self.processors[saga]
        except KeyError:
            raise SagaError(f"saga {saga!r} is not registered in the test environment") from None

    def _plan(self, state: WorkflowState) -> Plan:
        return self.registry[state.saga].plans[state.version]

    def _saga_of(self, workflow_id: str) -> str:
        for name, processor in self.processors.items():
            if name != self.default_saga and processor.holds(workflow_id):
                return name
        return self.default_saga

    def _dead_letter_of(self, workflow_id: str) -> str:
        letters = [x for x in self.dead_letters(self._saga_of(workflow_id))
                   if x.workflow_id == workflow_id]  # fmt: skip
        return f"{letters[-1].reason}: {letters[-1].exception}" if letters else "no record"

    def _client_event(self, saga: str, workflow_id: str, type_: EventType, **fields: Any) -> Event:
        if "version" not in fields:
            state = self._processor(saga).state(workflow_id)
            fields["version"] = state.version if state is not None else 0
        return Event(
            event_id=f"client-{next(self._ids)}",
            workflow_id=workflow_id,
            saga=saga,
            type=type_,
            origin=Origin.CLIENT,
            time_ms=self.now_ms,
            **fields,
        )

    def _send(self, event: Event) -> None:
        self._enqueue(event)
        self._drain()
        self._raise_refusal()

    def _enqueue(self, event: Event) -> None:
        processor = self._processor(event.saga)
        record = LogRecord(event.workflow_id.encode(), processor.codecs.event.encode(event))
        self._inbox.append((event.saga, record))

    def _raise_refusal(self) -> None:
        refusals, self._refusals = self._refusals, []
        if refusals:
            error = refusals[0].error
            if isinstance(error, BaseException):
                raise error
            raise SagaError(error, workflow_id=refusals[0].workflow_id)

    def _next_timer(self) -> tuple[TimerEntry, str] | None:
        best: tuple[TimerEntry, str] | None = None
        for name, processor in self.processors.items():
            entry = processor.next_timer()
            if entry is not None and (best is None or entry < best[0]):
                best = (entry, name)
        return best

    def _next_due_ms(self) -> int | None:
        """When the next timer fires or a killed worker's commands are handed over."""
        timer = self._next_timer()
        dues = [handover.due_ms for handover in self._handovers]
        if timer is not None:
            dues.append(timer[0].due_ms)
        return min(dues, default=None)

    def _fire_next(self) -> None:
        """Fire the next timer, or hand a killed worker's commands over if that comes first."""
        timer = self._next_timer()
        handover = min(self._handovers, key=lambda h: h.due_ms, default=None)
        if handover is not None and (timer is None or handover.due_ms <= timer[0].due_ms):
            self.now_ms = max(self.now_ms, handover.due_ms)
            self._drain()
            self._raise_refusal()
            return
        assert timer is not None
        self.now_ms = max(self.now_ms, timer[0].due_ms)
        self._fire(timer[1])

    def _fire(self, saga: str) -> None:
        result = self.processors[saga].fire_next(self.now_ms)
        self._take(saga, result)
        self._drain()
        self._raise_refusal()

    def _drain(self) -> None:
        while True:
            while self._inbox:
                saga, record = self._inbox.popleft()
                processor = self.processors[saga]
                offset = processor.append(record)
                self._take(saga, processor.apply(offset, self.now_ms))
            if self._commands:
                self._execute(self._commands.popleft())
                continue
            handover = next((h for h in self._handovers if h.due_ms <= self.now_ms), None)
            if handover is None:
                return
            # The partition has a live owner again: it gets what the dead worker left.
            self._handovers.remove(handover)
            self._survivors.add(handover.killed.command_id)
            self._commands.extend(handover.deliveries())

    def _take(self, saga: str, result: BatchResult) -> None:
        """Route what a committed batch produced, and keep each workflow's history."""
        processor = self.processors[saga]
        for event in [*result.applied, *result.decisions]:
            self.histories.setdefault(event.workflow_id, []).append(event)
        if len(result.applied) > 1:
            # One batch applied several inputs: each goes before its own decisions.
            for workflow_id in {event.workflow_id for event in result.applied}:
                self.histories[workflow_id] = processing_order(self.histories[workflow_id])
        self._refusals.extend(result.refusals)
        self._commands.extend(result.commands)
        for topic, key, value in result.inputs:
            target = self._topics.get(topic)
            if target is None:
                raise SagaError(f"no saga of the test environment reads {topic!r}")
            self._inbox.append((target, LogRecord(key, value)))
        if self.check_replay:
            for workflow_id in result.changed:
                if processor.state(workflow_id) is not None:
                    self.replay(workflow_id)
        for decision in result.decisions:
            if decision.type is EventType.WAIT_STARTED and decision.name:
                for signal in decision.name.split(","):
                    if signal in self.auto_signals:
                        self._enqueue(
                            self._client_event(
                                decision.saga,
                                decision.workflow_id,
                                EventType.SIGNAL,
                                name=signal,
                                payload=_json(self.auto_signals[signal]),
                            )
                        )
                        break

    def _execute(self, command: Command) -> None:
        for handover in self._handovers:
            if handover.killed.workflow_id == command.workflow_id:
                # Its partition has no live worker yet: the next one gets it with the rest.
                handover.held.append(command)
                return
        survivor = command.command_id in self._survivors
        injection = next(
            (
                i
                for i in self.injections
                if i.matches(command) and not (survivor and i.fault is Fault.CRASH)
            ),
            None,
        )
        functions = self.registry[command.saga].functions[command.version]
        fault = injection.fault if injection is not None else None
        if fault is Fault.FAIL or fault is Fault.NON_RETRYABLE:
            self._answer(
                command,
                answer_event(
                    command,
                    time_ms=self.now_ms,
                    error=ErrorInfo(
                        "InjectedFailure",
                        f"injected failure of {command.step!r}",
                        non_retryable=fault is Fault.NON_RETRYABLE,
                    ),
                ),
            )
            return
        if fault is Fault.TIME_OUT:
            if command.deadline_ms is None and command.start_deadline_ms is None:
                raise SagaError(
                    "an injected time-out needs a step with a timeout; this one would wait forever",
                    saga=command.saga,
                    step=command.step,
                )
            return
        for _ in range(2 if fault is Fault.RUN_TWICE else 1):
            self.executions.append(
                Execution(
                    command.workflow_id,
                    command.step,
                    command.kind,
                    command.attempt,
                    command.idempotency_key,
                    command.deadline_ms,
                )
            )
            sink = functools.partial(self._answer, command)
            heartbeats = (
                _CrashingSender(command, lambda: self.now_ms, sink, injection.after_heartbeats)
                if injection is not None and injection.fault is Fault.CRASH
                else HeartbeatSender(command, lambda: self.now_ms, sink)
            )
            try:
                answer = self._runner.run(
                    run_command(functions, command, lambda: self.now_ms, heartbeats)
                )
            except _WorkerKilled:
                assert injection is not None
                self._handovers.append(Handover(self.now_ms + injection.handover_ms, command))
                return
            # The virtual clock stands still while a function runs: the latest details
            # go out when it returns, as the worker sends them once the interval passed.
            heartbeats.flush()
            self._answer(command, answer)
        if fault is Fault.DELIVER_TWICE:
            self._answer(command, answer)

    def _answer(self, command: Command, answer: Event) -> None:
        """Produce a step's answer to the topic its command names, as a step worker does."""
        saga = self._topics.get(command.reply_topic)
        if saga is None:
            raise SagaError(f"no saga of the test environment reads {command.reply_topic!r}")
        value = self.processors[saga].codecs.event.encode(answer)
        self._inbox.append((saga, LogRecord(answer.workflow_id.encode(), value)))


class _States(MutableMapping[str, WorkflowState]):
    """The workflows' states in their processors' stores, as a mapping."""

    def __init__(self, env: SagaTestEnvironment) -> None:
        self._env = env

    def __getitem__(self, workflow_id: str) -> WorkflowState:
        for processor in self._env.processors.values():
            state = processor.state(workflow_id)
            if state is not None:
                return state
        raise KeyError(workflow_id)

    def __setitem__(self, workflow_id: str, state: WorkflowState) -> None:
        self._env._processor(state.saga).put_state(state)

    def __delitem__(self, workflow_id: str) -> None:
        raise SagaError("a workflow leaves the store only through its own log")

    def __iter__(self) -> Iterator[str]:
        for processor in self._env.processors.values():
            yield from processor.workflow_ids()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _json(payload: Any) -> str:
    if isinstance(payload, BaseModel):
        return payload.model_dump_json()
    return _ANY.dump_json(payload).decode()


class _CrashingSender(HeartbeatSender):
    """Heartbeats of a function whose worker dies at its beat after ``left`` more."""

    __slots__ = ("left",)

    def __init__(
        self,
        command: Command,
        now_ms: Callable[[], int],
        sink: Callable[[Event], None],
        left: int | None,
    ) -> None:
        super().__init__(command, now_ms, sink)
        self.left = left or 0

    def beat(self, details: Any) -> None:
        if self.left <= 0:
            # What the dying worker had sent, at most one interval stale, is in the log.
            self.flush()
            raise _WorkerKilled
        self.left -= 1
        super().beat(details)


def _jsonable(value: Any) -> Any:
    """``value`` (a pydantic model or any JSON-able value) as plain JSON data."""
    if isinstance(value, BaseModel):
        return json.loads(value.model_dump_json())
    return json.loads(_ANY.dump_json(value))
