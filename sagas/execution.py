"""Running one command: the user's action or compensation, turned into an answer event.

Shared by the step worker and the test kit, so that both run user code the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagas.context import StepContext
from sagas.errors import SagaError, SerializationError
from sagas.events import Command, CommandKind, ErrorInfo, Event, EventType, Origin
from sagas.retry import Retry

if TYPE_CHECKING:
    from sagas.plan import Plan

_ANSWERS = {
    (CommandKind.ACTION, True): EventType.STEP_SUCCEEDED,
    (CommandKind.ACTION, False): EventType.STEP_FAILED,
    (CommandKind.COMPENSATE, True): EventType.COMPENSATION_SUCCEEDED,
    (CommandKind.COMPENSATE, False): EventType.COMPENSATION_FAILED,
}


@dataclass(frozen=True, slots=True)
class StepAction:
    """A user function bound to the step and kind of command it answers."""

    plan: Plan
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


def build_context(plan: Plan, command: Command) -> StepContext[Any]:
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
        types=plan.types,
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


async def run_command(plan: Plan, command: Command, now_ms: Callable[[], int]) -> Event:
    """Run the function a command asks for and return its answer event.

    An async function is awaited; a plain one runs in a worker thread so that it
    never blocks the loop. A command with a deadline is abandoned (answered as
    failed) when the deadline passes. Any exception becomes a failed answer whose
    error says whether retrying could help.
    """
    action = plan.action(command.step, command.kind)
    try:
        ctx = build_context(plan, command)
        pending = action.fn(ctx) if action.is_async else asyncio.to_thread(action.fn, ctx)
        if command.deadline_ms is not None:
            remaining = max(command.deadline_ms - now_ms(), 0) / 1000
            value = await asyncio.wait_for(pending, timeout=remaining)
        else:
            value = await pending
        payload = (
            plan.types.dump_result(command.step, value)
            if command.kind is CommandKind.ACTION
            else None
        )
    except TimeoutError:
        error = ErrorInfo("StepTimedOut", f"the {command.kind.value} passed its deadline")
        return answer_event(command, time_ms=now_ms(), error=error)
    except Exception as exc:
        return answer_event(command, time_ms=now_ms(), error=action.error_info(exc))
    return answer_event(command, time_ms=now_ms(), payload=payload)
