"""A step action run in another process: what it is sent, what it sends back.

An action declared with ``executor="process"`` gets a context built from a picklable
snapshot of its command, in a process of the worker's pool; its heartbeats go back to
the worker, and the search attributes it sets come back with its result. The test kit
runs the same call in-process, so a saga behaves alike in both.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import TypeAdapter

from sagas.context import StepContext
from sagas.definition import Step
from sagas.errors import SagaError
from sagas.events import Command, CommandKind, ErrorInfo
from sagas.payloads import PayloadTypes
from sagas.retry import Retry

_DETAILS: TypeAdapter[Any] = TypeAdapter(Any)


@dataclass(frozen=True, slots=True)
class ProcessCall:
    """One command's action, named by module and qualified name, with its context's facts."""

    module: str
    qualname: str
    step: str
    retry: Retry
    types: PayloadTypes
    workflow_id: str
    version: int
    input_json: str
    results: dict[str, Any]
    signals: dict[str, Any]
    attempt: int
    idempotency_key: str
    heartbeat_details: Any
    sets_attributes: bool
    """Whether ``ctx.set_search_attribute`` is offered (an action's, not a compensation's)."""

    @classmethod
    def of(
        cls, fn: Callable[..., Any], retry: Retry, ctx: StepContext[Any], command: Command
    ) -> ProcessCall:
        """The call of ``fn`` with the snapshot of ``ctx`` (built for ``command``)."""
        return cls(
            module=fn.__module__,
            qualname=fn.__qualname__,
            step=command.step,
            retry=retry,
            types=ctx._types,
            workflow_id=command.workflow_id,
            version=command.version,
            input_json=ctx._input_json,
            results=dict(ctx._results),
            signals=dict(ctx._signals),
            attempt=command.attempt,
            idempotency_key=command.idempotency_key,
            heartbeat_details=ctx.heartbeat_details,
            sets_attributes=command.kind is CommandKind.ACTION,
        )


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """What a process call gives back: the result as JSON text, or the error answer."""

    payload: str | None
    error: ErrorInfo | None
    attributes: tuple[tuple[str, str | int | float | bool], ...] = ()
    """The search attributes the action set, in order, applied with its answer."""


class ProcessRunner(Protocol):
    """Where process calls run: the worker's pool (the test kit runs them in-process)."""

    async def run(self, call: ProcessCall, beat: Callable[[Any], None] | None) -> ProcessOutcome:
        """Run ``call``; its heartbeat details go to ``beat``. Cancelling it ends the call."""
        ...


def resolve_action(module: str, qualname: str) -> Callable[..., Any] | None:
    """The function importable as ``module``.``qualname`` (through the step it is
    declared as), or ``None`` when that name leads to something else."""
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    if isinstance(target, Step):
        target = target.fn
    return target if callable(target) else None


def run_call(call: ProcessCall, beat: Callable[[Any], None] | None) -> ProcessOutcome:
    """Run ``call`` here; any exception of the action becomes its error answer."""
    attributes: list[tuple[str, str | int | float | bool]] = []

    def set_attribute(name: str, value: object) -> None:
        if not isinstance(value, str | int | float | bool):
            raise SagaError(
                f"search attribute {name!r} cannot take {value!r}",
                saga=call.types.saga, workflow_id=call.workflow_id, step=call.step,
            )  # fmt: skip
        attributes.append((name, value))

    ctx: StepContext[Any] = StepContext(
        types=call.types,
        workflow_id=call.workflow_id,
        version=call.version,
        input_json=call.input_json,
        results=call.results,
        signals=call.signals,
        step=call.step,
        attempt=call.attempt,
        idempotency_key=call.idempotency_key,
        is_compensation=not call.sets_attributes,
        heartbeat_details=call.heartbeat_details,
        beat=beat,
        set_attribute=set_attribute if call.sets_attributes else None,
    )
    fn = resolve_action(call.module, call.qualname)
    try:
        if fn is None:
            raise SagaError(
                f"step {call.step!r}: {call.module}.{call.qualname} cannot be imported here",
                saga=call.types.saga, step=call.step,
            )  # fmt: skip
        value = fn(ctx)
        payload = call.types.dump_result(call.step, value)
    except Exception as exc:
        return ProcessOutcome(None, error_info(exc, call.retry))
    return ProcessOutcome(payload, None, tuple(attributes))


def error_info(exc: BaseException, retry: Retry) -> ErrorInfo:
    """How an exception raised by an action is reported in its answer."""
    non_retryable = (isinstance(exc, SagaError) and exc.non_retryable) or retry.is_non_retryable(
        exc
    )
    message = exc.message if isinstance(exc, SagaError) else str(exc)
    return ErrorInfo(type(exc).__name__, message or repr(exc), non_retryable)


def details_json(details: Any) -> str:
    """Heartbeat details as JSON text, to cross to the worker's process."""
    return _DETAILS.dump_json(details).decode()


def details_of(text: str) -> Any:
    """Heartbeat details back from their JSON text."""
    return json.loads(text)
