"""An in-memory runtime for testing sagas with pytest: no broker, and a clock that skips.

It drives workflows with the code the real runtime uses (``Plan.handle`` for
every event, ``run_command`` for every command) and keeps each workflow's log,
so a test can assert on outcomes and on the history::

    with SagaTestEnvironment(saga) as env:
        env.fail("create_shipment", non_retryable=True)
        wf = env.start(OrderInput(order_id="o-1", ...))
        assert env.status(wf).status is WorkflowStatus.COMPENSATED
        assert env.compensated(wf) == ["reserve_inventory", "charge_payment"]

Calls are synchronous: each one runs the workflows until they wait (for an
answer that an injected time-out withholds, a timer or a signal). Async actions
run on one event loop the environment owns, so it cannot be used from inside a
running loop (an ``async def`` test).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any

from pydantic import BaseModel, TypeAdapter

from processors.commands import command_records
from processors.search_index import SearchIndex
from sagas.definition import Saga
from sagas.engine.execution import HeartbeatSender, answer_event, run_command
from sagas.engine.plan import Plan, timer_fired
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
    the heartbeats sent so far stay in the log, no answer comes."""


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


class SagaTestEnvironment:
    """Runs sagas in memory with the runtime's semantics and a virtual clock.

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
        self.states: dict[str, WorkflowState] = {}
        self.histories: dict[str, list[Event]] = {}
        self.executions: list[Execution] = []
        self.injections: list[Injection] = []
        self._inbox: deque[Event] = deque()
        self._commands: deque[tuple[str, Command]] = deque()
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
        self, step: str, *, after_heartbeats: int, attempts: Iterable[int] | None = None
    ) -> None:
        """Kill the worker running ``step`` at its heartbeat after ``after_heartbeats``:
        those heartbeats reach the saga, the answer never does (the attempt times out)."""
        self.injections.append(
            Injection(
                step,
                Fault.CRASH,
                None if attempts is None else frozenset(attempts),
                CommandKind.ACTION,
                None,
                after_heartbeats,
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
        data = (
            payload.model_dump_json()
            if isinstance(payload, BaseModel)
            else (_ANY.dump_json(payload).decode())
        )
        self._send(
            self._client_event(
                self._saga_of(workflow_id), workflow_id, EventType.SIGNAL, name=name, payload=data
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

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``, firing every timer that falls due on the way."""
        target = self.now_ms + delta // timedelta(milliseconds=1)
        while True:
            due = self._next_timer()
            if due is None or due[0] > target:
                break
            self.now_ms = max(self.now_ms, due[0])
            self._fire(due[1], due[2])
        self.now_ms = target

    def run_until_complete(
        self, workflow_id: str, *, within: timedelta = timedelta(days=3650)
    ) -> StatusRecord:
        """Skip time from timer to timer until the workflow ends; its final status.

        Raises ``SagaError`` if it waits for something no timer brings (a signal,
        a missing answer) or does not end ``within`` the given span.
        """
        limit = self.now_ms + within // timedelta(milliseconds=1)
        while not self.states[workflow_id].status.is_final:
            due = self._next_timer()
            if due is None or due[0] > limit:
                raise SagaError(
                    "the workflow waits for something no timer will bring "
                    f"(timers: {self.states[workflow_id].timers})",
                    saga=self._saga_of(workflow_id),
                    workflow_id=workflow_id,
                )
            self.now_ms = max(self.now_ms, due[0])
            self._fire(due[1], due[2])
        return self.status(workflow_id)

    def status(self, workflow_id: str) -> StatusRecord:
        """The workflow's status record, as the status topic would hold it."""
        state = self._state(workflow_id)
        return self._plan(state).status_record(state)

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
        """Every event of the workflow's log, in order."""
        return list(self.histories[workflow_id])

    def event_types(self, workflow_id: str) -> list[EventType]:
        """The types of the workflow's events, in order."""
        return [event.type for event in self.histories[workflow_id]]

    def compensated(self, workflow_id: str) -> list[str]:
        """The steps whose compensation succeeded, in order."""
        history = self.histories[workflow_id]
        return [
            event.step or ""
            for i, event in enumerate(history)
            if event.type is EventType.COMPENSATION_SUCCEEDED and not _ignored(history, i)
        ]

    def executed(self, workflow_id: str, kind: CommandKind = CommandKind.ACTION) -> list[str]:
        """The steps whose function ran for this workflow (one entry per run), in order."""
        return [x.step for x in self.executions if x.workflow_id == workflow_id and x.kind is kind]

    def replay(self, workflow_id: str) -> WorkflowState:
        """Rebuild the state from the log; raises ``AssertionError`` if it differs from live."""
        state = self._state(workflow_id)
        rebuilt = self._plan(state).fold(self.histories[workflow_id])
        if rebuilt is None or rebuilt.to_bytes() != state.to_bytes():
            replayed = None if rebuilt is None else rebuilt.to_bytes()
            raise AssertionError(
                f"replaying the log of {workflow_id!r} gives another state:\n"
                f"live:   {state.to_bytes()!r}\nreplay: {replayed!r}"
            )
        return rebuilt

    def _state(self, workflow_id: str) -> WorkflowState:
        try:
            return self.states[workflow_id]
        except KeyError:
            raise SagaError("no workflow with this id", workflow_id=workflow_id) from None

    def _plan(self, state: WorkflowState) -> Plan:
        return self.registry[state.saga].plans[state.version]

    def _saga_of(self, workflow_id: str) -> str:
        state = self.states.get(workflow_id)
        return state.saga if state is not None else self.default_saga

    def _client_event(self, saga: str, workflow_id: str, type_: EventType, **fields: Any) -> Event:
        fields.setdefault(
            "version", self.states[workflow_id].version if workflow_id in self.states else 0
        )
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
        self._inbox.append(event)
        self._drain()

    def _next_timer(self) -> tuple[int, str, str] | None:
        best: tuple[int, str, str] | None = None
        for workflow_id, state in self.states.items():
            for timer, due in state.timers.items():
                if best is None or (due, workflow_id, timer) < best:
                    best = (due, workflow_id, timer)
        return best

    def _fire(self, workflow_id: str, timer: str) -> None:
        self._inbox.append(timer_fired(self.states[workflow_id], timer, self.now_ms))
        self._drain()

    def _drain(self) -> None:
        while self._inbox or self._commands:
            while self._inbox:
                self._apply(self._inbox.popleft())
            if self._commands:
                self._execute(self._commands.popleft()[1])

    def _apply(self, event: Event) -> None:
        versions = self.registry.get(event.saga)
        if versions is None:
            raise SagaError(
                f"saga {event.saga!r} is not registered in the test environment",
                workflow_id=event.workflow_id,
            )
        state = self.states.get(event.workflow_id)
        plan = versions.plan_for(state, event)
        transition = plan.handle(state, event, self.now_ms)
        history = self.histories.setdefault(event.workflow_id, [])
        if event.type is not EventType.TIMER_FIRED:
            history.append(event)
        history.extend(transition.decisions)
        self.states[event.workflow_id] = transition.state
        self._commands.extend(command_records(transition, TopicNames(plan.name).events))
        self._inbox.extend(transition.outbound)
        if self.check_replay:
            self.replay(event.workflow_id)
        for decision in transition.decisions:
            if decision.type is EventType.WAIT_STARTED and decision.name:
                for signal in decision.name.split(","):
                    if signal in self.auto_signals:
                        value = self.auto_signals[signal]
                        self._inbox.append(
                            self._client_event(
                                event.saga,
                                event.workflow_id,
                                EventType.SIGNAL,
                                name=signal,
                                payload=value.model_dump_json()
                                if isinstance(value, BaseModel)
                                else _ANY.dump_json(value).decode(),
                            )
                        )
                        break

    def _execute(self, command: Command) -> None:
        injection = next((i for i in self.injections if i.matches(command)), None)
        plan = self.registry[command.saga].functions[command.version]
        fault = injection.fault if injection is not None else None
        if fault is Fault.FAIL or fault is Fault.NON_RETRYABLE:
            self._inbox.append(
                answer_event(
                    command,
                    time_ms=self.now_ms,
                    error=ErrorInfo(
                        "InjectedFailure",
                        f"injected failure of {command.step!r}",
                        non_retryable=fault is Fault.NON_RETRYABLE,
                    ),
                )
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
                )
            )
            heartbeats = (
                _CrashingSender(
                    command, lambda: self.now_ms, self._inbox.append, injection.after_heartbeats
                )
                if injection is not None and injection.fault is Fault.CRASH
                else HeartbeatSender(command, lambda: self.now_ms, self._inbox.append)
            )
            try:
                answer = self._runner.run(
                    run_command(plan, command, lambda: self.now_ms, heartbeats)
                )
            except _WorkerKilled:
                return
            # The virtual clock stands still while a function runs: the latest details
            # go out when it returns, as the worker sends them once the interval passed.
            heartbeats.flush()
            self._inbox.append(answer)
        if fault is Fault.DELIVER_TWICE:
            self._inbox.append(answer)


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


def _ignored(history: list[Event], i: int) -> bool:
    """Whether the input at ``i`` was answered with an ``answer_ignored`` decision."""
    following = history[i + 1] if i + 1 < len(history) else None
    return (
        following is not None
        and following.type is EventType.ANSWER_IGNORED
        and following.cause == history[i].event_id
    )


def _jsonable(value: Any) -> Any:
    """``value`` (a pydantic model or any JSON-able value) as plain JSON data."""
    if isinstance(value, BaseModel):
        return json.loads(value.model_dump_json())
    return json.loads(_ANY.dump_json(value))
