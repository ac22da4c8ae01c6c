"""Running one command: the user's action or compensation, turned into an answer event.

Shared by the step worker and the test kit, so that both run user code the same way.
The function a command runs is looked up in the saga definition by step name and
kind of command; the plan never holds it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from pydantic import TypeAdapter

from sagas.context import StepContext
from sagas.definition import Parallel, Saga, Step, StepExecutor
from sagas.engine.fold import STARTED_MARK
from sagas.engine.process_call import ProcessCall, ProcessRunner, error_info, run_call
from sagas.errors import AttemptSupersededError, SagaError, SerializationError
from sagas.events import Command, CommandKind, ErrorInfo, Event, EventType, Origin
from sagas.payloads import PayloadTypes
from sagas.retry import Retry
from sagas.visibility import SearchAttribute, StepAttributes

_ANSWERS = {
    (CommandKind.ACTION, True): EventType.STEP_SUCCEEDED,
    (CommandKind.ACTION, False): EventType.STEP_FAILED,
    (CommandKind.COMPENSATE, True): EventType.COMPENSATION_SUCCEEDED,
    (CommandKind.COMPENSATE, False): EventType.COMPENSATION_FAILED,
}


@dataclass(frozen=True, slots=True)
class StepAction:
    """A user function bound to the step and kind of command it answers."""

    step: str
    kind: CommandKind
    fn: Callable[..., Any]
    retry: Retry
    in_process: bool = False
    """Whether the function runs in a process of the worker's pool (``executor="process"``)."""

    @property
    def is_async(self) -> bool:
        """Whether the function is a coroutine function (else it runs in a worker thread)."""
        return inspect.iscoroutinefunction(self.fn)

    def error_info(self, exc: BaseException) -> ErrorInfo:
        """How an exception raised by the function is reported in the answer."""
        return error_info(exc, self.retry)


def answer_event(
    command: Command,
    *,
    time_ms: int,
    payload: str | None = None,
    error: ErrorInfo | None = None,
    search_attributes: str | None = None,
) -> Event:
    """The answer to ``command``: succeeded when ``error`` is None, else failed."""
    return Event(
        event_id=f"{command.command_id}:answer",
        workflow_id=command.workflow_id,
        saga=command.saga,
        version=command.version,
        type=_ANSWERS[command.kind, error is None],
        origin=Origin.WORKER,
        time_ms=time_ms,
        step=command.step,
        attempt=command.attempt,
        payload=payload,
        error=error,
        cause=command.command_id,
        search_attributes=search_attributes,
    )


@dataclass(frozen=True, slots=True)
class StepFunctions:
    """The user functions of one saga version, by step and kind of command, with the
    payload types their contexts read and the search attributes their actions may set."""

    saga: str
    types: PayloadTypes
    actions: Mapping[tuple[str, CommandKind], StepAction]
    attributes: Mapping[str, SearchAttribute[Any]]

    @classmethod
    def of(cls, definition: Saga[Any], types: PayloadTypes) -> StepFunctions:
        """The functions ``definition`` declares (it is compiled: its steps are valid)."""
        actions: dict[tuple[str, CommandKind], StepAction] = {}
        for step in _steps(definition):
            if step.fn is not None:
                actions[step.name, CommandKind.ACTION] = StepAction(
                    step.name, CommandKind.ACTION, step.fn, step.retry,
                    in_process=step.executor == StepExecutor.PROCESS,
                )  # fmt: skip
            if step.undo is not None:
                actions[step.name, CommandKind.COMPENSATE] = StepAction(
                    step.name, CommandKind.COMPENSATE, step.undo.fn, step.undo.retry
                )
        attributes = {attribute.name: attribute for attribute in definition.search_attributes}
        return cls(definition.name, types, MappingProxyType(actions), MappingProxyType(attributes))

    def action(self, step: str, kind: CommandKind) -> StepAction:
        """The user function a command of this step and kind runs; ``SagaError`` if none."""
        try:
            return self.actions[step, kind]
        except KeyError:
            raise SagaError(
                f"no {kind.value} function for step {step!r}", saga=self.saga, step=step
            ) from None


def _steps(definition: Saga[Any]) -> Iterator[Step[Any, Any]]:
    for node in definition.nodes:
        if isinstance(node, Step):
            yield node
        elif isinstance(node, Parallel):
            yield from node.members


UNWATCHED_HEARTBEAT_INTERVAL_MS: Final = 10_000
"""How often heartbeats of a step without a heartbeat_timeout go out (their details
still let the next attempt resume)."""

_DETAILS: Final = TypeAdapter(Any)


def heartbeat_event(command: Command, *, time_ms: int, details: str | None, seq: int) -> Event:
    """A heartbeat of ``command``'s attempt carrying ``details`` (JSON text)."""
    return Event(
        event_id=f"{command.command_id}:hb:{seq}",
        workflow_id=command.workflow_id,
        saga=command.saga,
        version=command.version,
        type=EventType.HEARTBEAT,
        origin=Origin.WORKER,
        time_ms=time_ms,
        step=command.step,
        attempt=command.attempt,
        payload=details,
        cause=command.command_id,
    )


class HeartbeatSender:
    """Coalesces one attempt's ``ctx.heartbeat`` calls: at most one heartbeat event per
    third of the heartbeat timeout goes to ``sink``, carrying the latest details.

    ``beat`` may be called from the action's thread; ``sink`` is called under a lock,
    from whichever thread beat or ``flush`` runs in.
    """

    __slots__ = (
        "_command", "_interval", "_last", "_lock", "_now_ms", "_pending", "_seq", "_sink",
        "_superseded",
    )  # fmt: skip

    def __init__(
        self, command: Command, now_ms: Callable[[], int], sink: Callable[[Event], None]
    ) -> None:
        self._command = command
        self._now_ms = now_ms
        self._sink = sink
        timeout = command.heartbeat_timeout_ms
        self._interval = UNWATCHED_HEARTBEAT_INTERVAL_MS if timeout is None else timeout // 3
        self._last: int | None = None
        self._pending: str | None = None
        self._seq = 0
        self._superseded = False
        self._lock = threading.Lock()

    @property
    def interval_ms(self) -> int:
        """The least time between two heartbeat events of this attempt."""
        return self._interval

    def beat(self, details: Any) -> None:
        """Take the latest details; send them now unless one went out within the interval.

        Raises :class:`AttemptSupersededError` once :meth:`supersede` was called.
        """
        text = _DETAILS.dump_json(details).decode()
        with self._lock:
            if self._superseded:
                command = self._command
                raise AttemptSupersededError(
                    "a later attempt of this step has been sent: this one is stale",
                    saga=command.saga, workflow_id=command.workflow_id, step=command.step,
                    attempt=command.attempt,
                )  # fmt: skip
            self._pending = text
            now = self._now_ms()
            if self._last is None or now - self._last >= self._interval:
                self._send(now)

    def started(self) -> None:
        """Report that the attempt starts (a heartbeat named ``started``, with no details).

        It counts as the attempt's latest heartbeat, so a ``ctx.heartbeat`` right after it
        waits for the interval like any other: one record more per attempt, not two.
        """
        with self._lock:
            now = self._now_ms()
            self._last = now
            self._seq += 1
            event = heartbeat_event(self._command, time_ms=now, details=None, seq=self._seq)
            self._sink(replace(event, name=STARTED_MARK))

    def supersede(self) -> None:
        """Mark the attempt stale: nothing more is sent, and its next ``beat`` raises."""
        with self._lock:
            self._superseded = True
            self._pending = None

    def flush(self) -> bool:
        """Send details held back by the interval, if any; whether one went out."""
        with self._lock:
            if self._pending is None:
                return False
            self._send(self._now_ms())
            return True

    def _send(self, now: int) -> None:
        details, self._pending = self._pending, None
        assert details is not None
        self._last = now
        self._seq += 1
        self._sink(heartbeat_event(self._command, time_ms=now, details=details, seq=self._seq))


def build_context(
    functions: StepFunctions,
    command: Command,
    beat: Callable[[Any], None] | None = None,
    attributes: StepAttributes | None = None,
) -> StepContext[Any]:
    """The context a command's function receives; raises ``SerializationError`` on bad JSON."""
    try:
        results = json.loads(command.results) if command.results else {}
        signals = json.loads(command.signals) if command.signals else {}
        details = json.loads(command.heartbeat_details) if command.heartbeat_details else None
    except ValueError as exc:
        raise SerializationError(
            f"the command carries invalid JSON: {exc}",
            saga=command.saga,
            workflow_id=command.workflow_id,
            step=command.step,
            non_retryable=True,
        ) from exc
    return StepContext(
        types=functions.types,
        workflow_id=command.workflow_id,
        version=command.version,
        input_json=command.input or "{}",
        results=results,
        signals=signals,
        step=command.step,
        attempt=command.attempt,
        idempotency_key=command.idempotency_key,
        is_compensation=command.kind is CommandKind.COMPENSATE,
        heartbeat_details=details,
        beat=beat,
        set_attribute=None if attributes is None else attributes.set,
    )


async def run_command(
    functions: StepFunctions,
    command: Command,
    now_ms: Callable[[], int],
    heartbeats: HeartbeatSender | None = None,
    processes: ProcessRunner | None = None,
) -> Event:
    """Run the function a command asks for and return its answer event.

    An async function is awaited; a plain one runs in a worker thread so that it
    never blocks the loop, or, declared ``executor="process"``, in ``processes`` (in a
    thread here without them, from the same snapshot of its context); cancelling a
    process call at the deadline kills its process. A command with a deadline is
    abandoned (answered as failed) when the deadline passes; a plain function's thread
    cannot be killed in Python, so it runs on and its late value is dropped. Any
    exception becomes a failed answer whose error says whether retrying could help.
    ``ctx.heartbeat`` calls go to ``heartbeats`` (dropped without one). The search
    attributes an action sets go out with its succeeded answer.
    """
    action = functions.action(command.step, command.kind)
    if heartbeats is not None and command.start_deadline_ms is not None:
        heartbeats.started()
    attributes = (
        StepAttributes(
            saga=command.saga,
            step=command.step,
            workflow_id=command.workflow_id,
            declared=functions.attributes,
        )
        if command.kind is CommandKind.ACTION
        else None
    )
    try:
        beat = None if heartbeats is None else heartbeats.beat
        ctx = build_context(functions, command, beat, attributes)
        pending: Any
        if action.in_process:
            call = ProcessCall.of(action.fn, action.retry, ctx, command)
            pending = (
                asyncio.to_thread(run_call, call, beat)
                if processes is None
                else processes.run(call, beat)
            )
        elif action.is_async:
            pending = action.fn(ctx)
        else:
            pending = asyncio.to_thread(action.fn, ctx)
        if command.deadline_ms is not None:
            remaining = max(command.deadline_ms - now_ms(), 0) / 1000
            value = await asyncio.wait_for(pending, timeout=remaining)
        else:
            value = await pending
        if action.in_process:
            if value.error is not None:
                return answer_event(command, time_ms=now_ms(), error=value.error)
            if attributes is not None:
                for name, attribute in value.attributes:
                    attributes.set(name, attribute)
            payload = value.payload
        else:
            payload = (
                functions.types.dump_result(command.step, value)
                if command.kind is CommandKind.ACTION
                else None
            )
    except TimeoutError:
        error = ErrorInfo("StepTimedOut", f"the {command.kind.value} passed its deadline")
        return answer_event(command, time_ms=now_ms(), error=error)
    except Exception as exc:
        return answer_event(command, time_ms=now_ms(), error=action.error_info(exc))
    return answer_event(
        command,
        time_ms=now_ms(),
        payload=payload,
        search_attributes=None if attributes is None else attributes.to_json(),
    )
