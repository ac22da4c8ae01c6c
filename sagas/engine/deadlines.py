"""Due times taken from data: a sleep, a wait timeout or a step timeout computed per workflow.

A constant is checked when the saga compiles; a function of the workflow view is a
decider, like a branch chooser: the plan calls it once when it reaches the node and
records the due time it gives in the decision (``timer_started``, ``wait_started``,
``step_scheduled``), so that a replay folds the recorded time and never calls it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sagas.context import WorkflowView

MAX_DURATION: Final = timedelta(days=3653)
"""The longest duration a sleep or timeout may have (about ten years): anything longer is
almost certainly a unit mistake (milliseconds read as seconds), not a plan."""

MAX_DURATION_MS: Final = MAX_DURATION // timedelta(milliseconds=1)


class DueTimeError(Exception):
    """A computed due time could not be had: the function raised or returned a bad value."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message


def check_duration(value: object, what: str) -> int:
    """``value`` (a timedelta) in whole ms; ``ValueError`` unless 0 < value <= MAX_DURATION."""
    if not isinstance(value, timedelta):
        raise ValueError(f"{what} must be a datetime.timedelta, got {value!r}")
    ms = value // timedelta(milliseconds=1)
    if ms <= 0:
        raise ValueError(f"{what} must be positive, got {value}")
    if ms > MAX_DURATION_MS:
        raise ValueError(f"{what} must be at most {MAX_DURATION.days} days, got {value}")
    return ms


def instant_ms(value: object, what: str) -> int:
    """``value`` (a timezone-aware datetime) in ms since the epoch; ``ValueError`` otherwise."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime.datetime, got {value!r}")
    return int(value.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class DueTime:
    """When a timer falls due, relative to the moment the plan reaches it.

    ``fixed_ms`` is a constant duration (or, with ``absolute``, an instant in ms since
    the epoch); ``compute`` is a function of the workflow view giving a timedelta (or,
    with ``absolute``, a datetime). Exactly one of the two is set.
    """

    fixed_ms: int | None
    compute: Callable[[WorkflowView[Any]], Any] | None = None
    absolute: bool = False
    what: str = "duration"

    @property
    def is_computed(self) -> bool:
        """Whether the due time depends on the workflow (the plan records what it gave)."""
        return self.compute is not None

    def due_ms(self, now_ms: int, view: Callable[[], WorkflowView[Any]]) -> int:
        """The due time for a workflow reaching the timer at ``now_ms``.

        An instant in the past is due at once (``now_ms``). Raises ``DueTimeError`` when
        the function raises or returns a value out of bounds.
        """
        if self.compute is None:
            assert self.fixed_ms is not None
            return max(self.fixed_ms, now_ms) if self.absolute else now_ms + self.fixed_ms
        try:
            value = self.compute(view())
        except Exception as exc:
            message = f"the {self.what} function raised {exc!r}"
            raise DueTimeError(type(exc).__name__, message) from exc
        try:
            if self.absolute:
                at = instant_ms(value, self.what)
                if at - now_ms > MAX_DURATION_MS:
                    raise ValueError(
                        f"{self.what} must be at most {MAX_DURATION.days} days ahead, got {value}"
                    )
                return max(at, now_ms)
            return now_ms + check_duration(value, self.what)
        except ValueError as exc:
            raise DueTimeError("InvalidDueTime", str(exc)) from exc
