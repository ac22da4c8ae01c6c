"""The compiled form of a saga: nodes with resolved jump targets and steps with their policies.

Plain frozen data built once by :mod:`sagas.compiler`; the plan reads it for
every event, so targets are node indexes and durations are milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pydantic import BaseModel

from sagas.context import WorkflowView
from sagas.definition import Action, StepKind
from sagas.retry import Retry


class NodeKind(IntEnum):
    """What a node does when the workflow reaches it."""

    STEP = 1
    PARALLEL = 2
    SLEEP = 3
    WAIT = 4
    BRANCH = 5
    CHILD = 6


@dataclass(frozen=True, slots=True)
class CompensationSpec:
    """A step's compiled compensation."""

    fn: Action
    retry: Retry
    timeout_ms: int | None


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A compiled step (an action, or a child saga when ``child_saga`` is set)."""

    name: str
    node: int
    kind: StepKind
    queue: str
    retry: Retry
    timeout_ms: int | None
    fn: Action | None
    compensation: CompensationSpec | None
    group: str | None
    on_failure: int | None
    child_saga: str | None = None
    child_input: Callable[[WorkflowView[Any]], BaseModel] | None = None
    dispatch_objective_ms: int | None = None
    """The p99 within which the step's command should start; None: no objective."""

    @property
    def compensatable(self) -> bool:
        """Whether a later failure undoes this step."""
        return self.compensation is not None and self.kind is StepKind.COMPENSATABLE


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A compiled node; ``next`` and the other targets are node indexes (``len(nodes)`` ends)."""

    name: str
    index: int
    kind: NodeKind
    next: int
    steps: tuple[str, ...] = ()
    duration_ms: int = 0
    signals: frozenset[str] = frozenset()
    timeout_ms: int | None = None
    on_timeout: int | None = None
    choose: Callable[[WorkflowView[Any]], Any] | None = None
    targets: tuple[tuple[str, int], ...] = ()
    forward_only: bool = False
