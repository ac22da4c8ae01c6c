"""The compiled node types of a saga, one frozen type per kind, and its steps' policies.

Plain frozen data built once by :mod:`sagas.engine.compiler`; the plan reads it for
every event, so targets are node indexes and durations are milliseconds. No user
step function is held here: the step execution finds those in the definition. The
only user code a node holds is a decider (a branch chooser, a child's input), a pure
function of the workflow view that the plan calls to decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

from sagas.context import WorkflowView
from sagas.definition import StepKind
from sagas.engine.deadlines import DueTime
from sagas.retry import Retry


@dataclass(frozen=True, slots=True)
class CompensationSpec:
    """A step's compiled compensation policy."""

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
    compensation: CompensationSpec | None
    group: str | None
    on_failure: int | None
    child_saga: str | None = None
    dispatch_objective_ms: int | None = None
    """The p99 within which the step's command should start; None: no objective."""
    timeout_fn: Callable[[WorkflowView[Any]], Any] | None = None
    """A timeout computed from the workflow for each attempt (then ``timeout_ms`` is None)."""
    heartbeat_ms: int | None = None
    """The longest an attempt may go without a heartbeat; None: heartbeats are not watched."""
    schedule_to_start: DueTime | None = None
    """How long each attempt's command may wait for a worker to start it; None: for ever."""
    schedule_to_close: DueTime | None = None
    """The bound on all the step's attempts from its first scheduling; None: no bound."""

    @property
    def has_timeout(self) -> bool:
        """Whether an attempt of this step has a deadline (constant or computed)."""
        return self.timeout_ms is not None or self.timeout_fn is not None

    child_undo: bool = False
    """A child step compensated by the child's own compensations (no hand-written one)."""

    @property
    def compensatable(self) -> bool:
        """Whether a later failure undoes this step."""
        return self.compensation is not None and self.kind is StepKind.COMPENSATABLE


@dataclass(frozen=True, slots=True)
class CompiledNode:
    """What every compiled node has; ``next`` and other targets are node indexes
    (``len(nodes)`` ends the workflow)."""

    name: str
    index: int
    next: int


@dataclass(frozen=True, slots=True)
class StepNode(CompiledNode):
    """A single step, sent as a command."""

    step: str


@dataclass(frozen=True, slots=True)
class ParallelNode(CompiledNode):
    """Steps sent together; the workflow moves on once all of them succeeded."""

    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SleepNode(CompiledNode):
    """A durable pause until ``due`` (a duration or a moment, constant or computed)."""

    due: DueTime


@dataclass(frozen=True, slots=True)
class WaitNode(CompiledNode):
    """A wait for one of ``signals``, with an optional timeout and where it jumps to."""

    signals: frozenset[str]
    timeout: DueTime | None
    on_timeout: int | None


@dataclass(frozen=True, slots=True)
class BranchNode(CompiledNode):
    """A choice of the next node; ``choose`` is a pure function of the workflow view."""

    choose: Callable[[WorkflowView[Any]], Any]
    targets: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ChildNode(CompiledNode):
    """A step that runs another saga; ``input`` is a pure function of the workflow view."""

    step: str
    saga: str
    input: Callable[[WorkflowView[Any]], BaseModel]
    start_timeout_ms: int | None = None
    """How long the child's start may go unanswered before the status says so."""
    timeout: DueTime | None = None
    """How long the child may run before this step fails and the child is cancelled."""


@dataclass(frozen=True, slots=True)
class ContinueAsNewNode(CompiledNode):
    """The end of a run; ``input`` builds the next run's input from the workflow view."""

    input: Callable[[WorkflowView[Any]], BaseModel]
    input_model: type[BaseModel]


@dataclass(frozen=True, slots=True)
class UpdateSpec:
    """A compiled update: its payload type, deciders and the step that closes it."""

    name: str
    payload: TypeAdapter[Any]
    handler: Callable[[WorkflowView[Any], Any], Any]
    check: Callable[[WorkflowView[Any], Any], Any] | None
    before: str | None


Node = StepNode | ParallelNode | SleepNode | WaitNode | BranchNode | ChildNode | ContinueAsNewNode
"""Any compiled node; code that acts on one matches every kind (``assert_never`` after)."""
