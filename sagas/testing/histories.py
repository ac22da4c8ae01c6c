"""Recorded histories: save a workflow's log and check that a saga still replays it.

A history recorded from a real or test run, kept beside the tests, is replayed
against the current definition on every CI run: each input is handled again and
the decisions must come out exactly as recorded. A change to a saga that would
make workflows in flight take other decisions (a step renamed, reordered,
given another timeout...) fails the test instead of surprising production.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sagas.definition import Saga
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.errors import SagaError, UnapplicableEventError
from sagas.events import Event, EventType, Origin
from sagas.log_order import processing_order
from schemas.history_lines import dump_history, load_history

__all__ = ["HistoryMismatchError", "dump_history", "load_history", "replay_history"]

_COMPARED = ("type", "step", "attempt", "payload", "error", "name", "due_ms", "parent")


class HistoryMismatchError(SagaError):
    """The current saga definition takes other decisions than a recorded history holds."""


def replay_history(saga: Saga[Any] | SagaVersions, events: list[Event]) -> WorkflowState:
    """Handle the recorded inputs again and check every decision matches; the final state.

    Raises ``HistoryMismatchError`` at the first decision that differs.
    """
    versions = compile_versions(saga)
    # A history read from a real log may show an input before the decisions of the
    # one before it (one batch): replay it in the order the processor took it.
    events = processing_order(events)
    state: WorkflowState | None = None
    i = 0
    while i < len(events):
        event = events[i]
        if event.origin is Origin.PROCESSOR and event.type is not EventType.TIMER_FIRED:
            raise _mismatch(event, i, "a decision no input led to")
        j = i + 1
        while (
            j < len(events)
            and events[j].origin is Origin.PROCESSOR
            and (events[j].type is not EventType.TIMER_FIRED)
        ):
            j += 1
        first = i if event.type is EventType.TIMER_FIRED else i + 1
        recorded = events[first:j]
        now = recorded[-1].time_ms if recorded else event.time_ms
        try:
            plan = versions.plan_for(state, event)
            transition = plan.handle(state, event, now)
        except UnapplicableEventError:
            if recorded:
                raise
            i = j
            continue
        for k, (want, got) in enumerate(zip(recorded, transition.decisions, strict=False)):
            if _facts(want) != _facts(got):
                raise _mismatch(want, first + k, f"the saga now decides {_describe(got)}")
        if len(recorded) != len(transition.decisions):
            raise _mismatch(
                event, i, f"{len(recorded)} decisions recorded, {len(transition.decisions)} now"
            )
        state = transition.state
        i = j
    if state is None:
        raise HistoryMismatchError("the history starts no workflow")
    return state


def _facts(event: Event) -> tuple[Any, ...]:
    return tuple(getattr(event, name) for name in _COMPARED)


def _describe(event: Event) -> str:
    facts = ", ".join(
        f"{name}={value.value if isinstance(value, StrEnum) else value!r}"
        for name, value in zip(_COMPARED, _facts(event), strict=True)
        if value
    )
    return f"({facts})"


def _mismatch(event: Event, index: int, what: str) -> HistoryMismatchError:
    return HistoryMismatchError(
        f"event {index} of the history, {_describe(event)}: {what}",
        saga=event.saga,
        workflow_id=event.workflow_id,
        step=event.step,
    )
