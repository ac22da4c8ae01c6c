"""The pure compensation policy the compiled plan follows.

- Undo exactly the completed compensatable steps, each once, latest first
  (reverse completion order).
- The completed steps of one parallel group are undone together, as one wave,
  before the steps that ran earlier.
- Once the point of no return (a pivot or a retriable step) has succeeded, or
  when a retriable step is the one that failed, nothing is undone: the
  workflow fails and alerts.
- A compensation that fails is retried with its own policy; one that fails for
  good (limit reached or non-retryable) ends the workflow ``FAILED``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum


class Recovery(StrEnum):
    """What a permanent failure leads to."""

    COMPENSATE = "compensate"
    FAIL = "fail"


def compensation_waves(
    completed: Sequence[str], group_of: Mapping[str, str | None]
) -> list[tuple[str, ...]]:
    """The compensations to run, as waves in order; the steps of a wave run in parallel.

    ``completed`` holds the completed compensatable steps in completion order;
    ``group_of`` maps a step to its parallel group (absent or ``None`` for none).
    Consecutive completions of one group form one wave, so a group's steps are
    undone together and before anything that completed before the group.
    """
    waves: list[list[str]] = []
    last_group: str | None = None
    for step in reversed(completed):
        group = group_of.get(step)
        if waves and group is not None and group == last_group:
            waves[-1].append(step)
        else:
            waves.append([step])
        last_group = group
    return [tuple(wave) for wave in waves]


def recovery_for(*, committed: bool, failed_step_retriable: bool) -> Recovery:
    """Whether a permanent failure is compensated or ends the workflow ``FAILED`` at once."""
    if committed or failed_step_retriable:
        return Recovery.FAIL
    return Recovery.COMPENSATE


def retry_compensation(
    *, attempt: int, non_retryable: bool, allows_attempt: Callable[[int], bool]
) -> bool:
    """Whether a failed compensation attempt is tried again (else the workflow is ``FAILED``)."""
    return not non_retryable and allows_attempt(attempt + 1)
