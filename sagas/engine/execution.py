"""Running one command: the user's action or compensation, turned into an answer event.

Shared by the step worker and the test kit, so that both run user code the same way.
The function a command runs is looked up in the saga definition by step name and
kind of command; the plan never holds it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sagas.context import StepContext
from sagas.definition import Parallel, Saga, Step
from sagas.errors import SagaError, SerializationError
from sagas.events import Command, CommandKind, ErrorInfo, Event, EventType, Origin
from sagas.payloads import PayloadTypes
from sagas.retry import Retry

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

    @property
    def is_async(self) -> bool:
        """Whether the function is a coroutine function (else it runs in a worker thread)."""
        return inspect.iscoroutinefunction(self.fn)

    def error_info(self, exc: BaseException) -> ErrorInfo:
        """How an exception raised by the function is reported in the answer."""
        non_retryable = (
            isinstance(exc, SagaError) and exc.non_retryable
        ) or self.retry.is_non_retryable(exc)
        message = exc.message if isinstance(exc, SagaError) else str(exc)
        return ErrorInfo(type(exc).__name__, message or repr(exc), non_retryable)


def answer_event(
    command: Command, *, time_ms: int, payload: str | None = None, error: ErrorInfo | None = None
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
    )


@dataclass(frozen=True, slots=True)
class StepFunctions:
    """The user functions of one saga version, by step and kind of command, with the
    payload types their contexts read."""

    saga: str
    types: PayloadTypes
    actions: Mapping[tuple[str, CommandKind], StepAction]

    @classmethod
    def of(cls, definition: Saga[Any], types: PayloadTypes) -> StepFunctions:
        """The functions ``definition`` declares (it is compiled: its steps are valid)."""
        actions: dict[tuple[str, CommandKind], StepAction] = {}
        for step in _steps(definition):
            if step.fn is not None:
                actions[step.name, CommandKind.ACTION] = StepAction(
                    step.name, CommandKind.ACTION, step.fn, step.retry
                )
            if step.undo is not None:
                actions[step.name, CommandKind.COMPENSATE] = StepAction(
                    step.name, CommandKind.COMPENSATE, step.undo.fn, step.undo.retry
                )
        return cls(definition.name, types, MappingProxyType(actions))

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


def build_context(functions: StepFunctions, command: Command) -> StepContext[Any]:
    """The context a command's function receives; raises ``SerializationError`` on bad JSON."""
    try:
        results = json.loads(command.results) if command.results else {}
        signals = json.loads(command.signals) if command.signals else {}
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
    )


async def run_command(
    functions: StepFunctions, command: Command, now_ms: Callable[[], int]
) -> Event:
    """Run the function a command asks for and return its answer event.

    An async function is awaited; a plain one runs in a worker thread so that it
    never blocks the loop. A command with a deadline is abandoned (answered as
    failed) when the deadline passes. Any exception becomes a failed answer whose
    error says whether retrying could help.
    """
    action = functions.action(command.step, command.kind)
    try:
        ctx = build_context(functions, command)
        pending = action.fn(ctx) if action.is_async else asyncio.to_thread(action.fn, ctx)
        if command.deadline_ms is not None:
            remaining = max(command.deadline_ms - now_ms(), 0) / 1000
            value = await asyncio.wait_for(pending, timeout=remaining)
        else:
            value = await pending
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
    return answer_event(command, time_ms=now_ms(), payload=payload)
