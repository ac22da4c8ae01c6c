"""A workflow's events as a timeline: what kind of thing each is, when, and a summary of steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sagas.events import Event, EventType


class Lane(StrEnum):
    """What part of a workflow an event is about; the page colours entries by it."""

    WORKFLOW = "workflow"
    STEP = "step"
    COMPENSATION = "compensation"
    TIMER = "timer"
    SIGNAL = "signal"
    REQUEST = "request"
    OUTCOME = "outcome"


_LANES: dict[EventType, Lane] = {
    EventType.START_REQUESTED: Lane.WORKFLOW,
    EventType.STARTED: Lane.WORKFLOW,
    EventType.START_IGNORED: Lane.WORKFLOW,
    EventType.STEP_SCHEDULED: Lane.STEP,
    EventType.STEP_SUCCEEDED: Lane.STEP,
    EventType.STEP_FAILED: Lane.STEP,
    EventType.STEP_TIMED_OUT: Lane.STEP,
    EventType.RETRY_SCHEDULED: Lane.STEP,
    EventType.ANSWER_IGNORED: Lane.STEP,
    EventType.BRANCH_TAKEN: Lane.STEP,
    EventType.DECIDER_FAILED: Lane.STEP,
    EventType.CHILD_STARTED: Lane.STEP,
    EventType.CHILD_ENDED: Lane.STEP,
    EventType.COMPENSATION_SCHEDULED: Lane.COMPENSATION,
    EventType.COMPENSATION_SUCCEEDED: Lane.COMPENSATION,
    EventType.COMPENSATION_FAILED: Lane.COMPENSATION,
    EventType.COMPENSATION_RETRY_SCHEDULED: Lane.COMPENSATION,
    EventType.TIMER_STARTED: Lane.TIMER,
    EventType.TIMER_FIRED: Lane.TIMER,
    EventType.WAIT_STARTED: Lane.TIMER,
    EventType.SIGNAL: Lane.SIGNAL,
    EventType.SIGNAL_RECEIVED: Lane.SIGNAL,
    EventType.SIGNAL_REJECTED: Lane.SIGNAL,
    EventType.CANCEL_REQUESTED: Lane.REQUEST,
    EventType.TERMINATE_REQUESTED: Lane.REQUEST,
    EventType.REDRIVE_REQUESTED: Lane.REQUEST,
    EventType.COMPLETED: Lane.OUTCOME,
    EventType.COMPENSATED: Lane.OUTCOME,
    EventType.FAILED: Lane.OUTCOME,
    EventType.CANCELLED: Lane.OUTCOME,
    EventType.TERMINATED: Lane.OUTCOME,
}

_PAYLOAD_CHARS = 120


@dataclass(frozen=True, slots=True)
class Entry:
    """One event on the timeline, with its time and its offset from the first event."""

    lane: Lane
    type: str
    time: str
    since_start_s: float
    step: str | None
    attempt: int
    name: str | None
    error: str | None
    payload: str | None
    origin: str


@dataclass(frozen=True, slots=True)
class StepSummary:
    """What happened to one step: attempts made, how its last attempt ended, its undo."""

    step: str
    attempts: int
    outcome: str
    compensation: str | None


def lane_of(event: Event) -> Lane:
    """The lane of an event; a type added later falls in the workflow lane."""
    return _LANES.get(event.type, Lane.WORKFLOW)


def timeline(events: Sequence[Event]) -> list[Entry]:
    """The entries of ``events`` in log order."""
    first = events[0].time_ms if events else 0
    entries = []
    for event in events:
        payload = event.payload
        if payload is not None and len(payload) > _PAYLOAD_CHARS:
            payload = payload[: _PAYLOAD_CHARS - 3] + "..."
        error = None if event.error is None else f"{event.error.type}: {event.error.message}"
        entries.append(
            Entry(
                lane=lane_of(event),
                type=event.type.value,
                time=datetime.fromtimestamp(event.time_ms / 1000, tz=UTC).strftime(
                    "%Y-%m-%d %H:%M:%S.%f"
                )[:-3],
                since_start_s=(event.time_ms - first) / 1000,
                step=event.step,
                attempt=event.attempt,
                name=event.name,
                error=error,
                payload=payload,
                origin=event.origin.value,
            )
        )
    return entries


_STEP_OUTCOMES = {
    EventType.STEP_SCHEDULED: "scheduled",
    EventType.STEP_SUCCEEDED: "succeeded",
    EventType.STEP_FAILED: "failed",
    EventType.STEP_TIMED_OUT: "timed out",
    EventType.RETRY_SCHEDULED: "retrying",
}
_COMPENSATION_OUTCOMES = {
    EventType.COMPENSATION_SCHEDULED: "scheduled",
    EventType.COMPENSATION_SUCCEEDED: "compensated",
    EventType.COMPENSATION_FAILED: "failed",
    EventType.COMPENSATION_RETRY_SCHEDULED: "retrying",
}


def step_summaries(events: Sequence[Event]) -> list[StepSummary]:
    """One summary per step, in the order the steps were first scheduled.

    Only the saga processor's decisions and the workers' answers are counted, so a step
    that was scheduled three times shows three attempts.
    """
    attempts: dict[str, int] = {}
    outcomes: dict[str, str] = {}
    undo: dict[str, str] = {}
    for event in events:
        step = event.step
        if step is None:
            continue
        if event.type is EventType.STEP_SCHEDULED:
            attempts[step] = max(attempts.get(step, 0), event.attempt, 1)
        if event.type in _STEP_OUTCOMES and step in attempts:
            outcomes[step] = _STEP_OUTCOMES[event.type]
        if event.type in _COMPENSATION_OUTCOMES:
            undo[step] = _COMPENSATION_OUTCOMES[event.type]
    return [StepSummary(step, n, outcomes[step], undo.get(step)) for step, n in attempts.items()]
