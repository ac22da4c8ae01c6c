"""What handling one event produces: the decisions, the commands and the outbound events.

``TransitionBuilder`` collects them during one ``Plan.handle`` call, folding each
decision into the new state as it is taken. A transition names no topic: the runtime
(and the test kit, which runs the runtime's path) turns its command orders into
command records, giving the topic answers go to (``processors.commands``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from sagas.engine.state import Phase, WorkflowState
from sagas.engine.timers import TimerKind, timer_id
from sagas.events import CommandKind, ErrorInfo, Event, EventType, Origin, WorkflowStatus

if TYPE_CHECKING:
    from sagas.engine.plan import Plan

_FINAL_DECISIONS = frozenset(
    {
        EventType.COMPLETED,
        EventType.COMPENSATED,
        EventType.FAILED,
        EventType.CANCELLED,
        EventType.TERMINATED,
    }
)


class CommandOrder(NamedTuple):
    """A decision to send one step's action or compensation to the step's queue."""

    queue: str
    kind: CommandKind
    decision: Event
    """The ``step_scheduled`` or ``compensation_scheduled`` decision it follows from."""
    heartbeat_ms: int | None = None
    """The step's heartbeat timeout, for an action whose heartbeats are watched."""
    start_deadline_ms: int | None = None
    """When the action's attempt fails unless a worker has started it (schedule_to_start)."""
    close_by_ms: int | None = None
    """When the action's step fails for good, all attempts counted (schedule_to_close)."""

    @property
    def deadline_ms(self) -> int | None:
        """When the worker gives the attempt up: its timeout or the step's schedule_to_close,
        whichever comes first, since an answer after the close is ignored anyway."""
        bounds = [t for t in (self.decision.due_ms, self.close_by_ms) if t is not None]
        return min(bounds, default=None)


@dataclass(slots=True)
class Transition:
    """What handling one event produced, for the processor to write in one transaction."""

    state: WorkflowState
    decisions: list[Event] = field(default_factory=list)
    """Events to append to the saga's own log (a fired timer's own event comes first)."""
    orders: list[CommandOrder] = field(default_factory=list)
    """The commands to send, in order (each from one scheduling decision)."""
    outbound: list[Event] = field(default_factory=list)
    """Events for other workflows' logs; ``Event.saga`` names the destination saga."""
    ended_runs: list[WorkflowState] = field(default_factory=list)
    """Each run this transition continued as new, as it stood when it ended, for the
    processor to keep for the retention period of ended workflows."""


class TransitionBuilder:
    """The decisions, commands and outbound events of one ``Plan.handle`` call."""

    __slots__ = ("decisions", "ended_runs", "event", "now_ms", "outbound", "plan")

    def __init__(self, plan: Plan, event: Event, now_ms: int) -> None:
        self.plan = plan
        self.event = event
        self.now_ms = now_ms
        self.decisions: list[Event] = []
        self.outbound: list[Event] = []
        self.ended_runs: list[WorkflowState] = []

    def decision(self, type_: EventType, **fields: Any) -> Event:
        event = self.event
        return Event(
            event_id=f"{event.event_id}:{len(self.decisions)}",
            workflow_id=event.workflow_id,
            saga=self.plan.name,
            version=self.plan.version,
            type=type_,
            origin=Origin.PROCESSOR,
            time_ms=self.now_ms,
            cause=event.event_id,
            **fields,
        )

    def emit(self, state: WorkflowState, type_: EventType, **fields: Any) -> Event:
        """Record a decision and fold it into ``state``."""
        decision = self.decision(type_, **fields)
        self.decisions.append(decision)
        self.plan.fold_into(state, decision)
        return decision

    def to_children(self, state: WorkflowState, type_: EventType, request: Event) -> None:
        for name, step_run in state.steps.items():
            if step_run.child is not None and step_run.phase is Phase.SCHEDULED:
                self.outbound.append(
                    Event(
                        event_id=f"{request.event_id}:{name}",
                        workflow_id=step_run.child,
                        saga=self.plan.steps[name].child_saga or "",
                        version=0,
                        type=type_,
                        origin=Origin.PROCESSOR,
                        time_ms=self.now_ms,
                        error=request.error,
                        payload=request.payload,
                        cause=request.event_id,
                    )
                )

    def finish(self, state: WorkflowState) -> Transition:
        """The transition to ``state``, with the commands its scheduling decisions order."""
        steps = self.plan.steps
        orders: list[CommandOrder] = []
        for decision in self.decisions:
            t = decision.type
            if t is EventType.COMPENSATION_SCHEDULED and steps[decision.step or ""].child_undo:
                self.outbound.append(self._undo_child(state, decision))
            elif t is EventType.STEP_SCHEDULED or t is EventType.COMPENSATION_SCHEDULED:
                kind = (
                    CommandKind.ACTION if t is EventType.STEP_SCHEDULED else CommandKind.COMPENSATE
                )
                spec = steps[decision.step or ""]
                heartbeat = spec.heartbeat_ms if kind is CommandKind.ACTION else None
                action = kind is CommandKind.ACTION
                start_by = (
                    state.timers.get(timer_id(TimerKind.SCHEDULE_TO_START, spec.name))
                    if action and spec.schedule_to_start is not None
                    else None
                )
                close_by = (
                    state.timers.get(timer_id(TimerKind.SCHEDULE_TO_CLOSE, spec.name))
                    if action and spec.schedule_to_close is not None
                    else None
                )
                orders.append(
                    CommandOrder(spec.queue, kind, decision, heartbeat, start_by, close_by)
                )
            elif t is EventType.STARTED and state.parent is not None and decision.name is None:
                self.outbound.append(_child_running(state, decision))
            elif t in _FINAL_DECISIONS and state.parent is not None:
                if state.undo_for:
                    self.outbound.append(undo_answer(state, decision.event_id, decision.time_ms))
                else:
                    self.outbound.append(_child_ended(state, decision))
        return Transition(state, self.decisions, orders, self.outbound, self.ended_runs)

    def _undo_child(self, state: WorkflowState, decision: Event) -> Event:
        """The request that makes a completed child saga run its own compensations."""
        step = decision.step or ""
        return Event(
            event_id=decision.event_id + ":undo",
            workflow_id=state.steps[step].child or "",
            saga=self.plan.steps[step].child_saga or "",
            version=0,
            type=EventType.COMPENSATE_REQUESTED,
            origin=Origin.PROCESSOR,
            time_ms=self.now_ms,
            step=step,
            attempt=decision.attempt,
            parent=f"{self.plan.name}/{state.workflow_id}/{step}",
            cause=decision.event_id,
        )


def undo_answer(state: WorkflowState, event_id: str, time_ms: int) -> Event:
    """A child's answer to its parent's compensation: undone, or not (then for good)."""
    saga, workflow_id, step = _parent_parts(state.parent or "")
    undone = state.status is WorkflowStatus.COMPENSATED
    return Event(
        event_id=event_id + ":undone",
        workflow_id=workflow_id,
        saga=saga,
        version=0,
        type=EventType.COMPENSATION_SUCCEEDED if undone else EventType.COMPENSATION_FAILED,
        origin=Origin.PROCESSOR,
        time_ms=time_ms,
        step=step,
        attempt=state.undo_for,
        error=None
        if undone
        else ErrorInfo(
            "ChildNotUndone",
            f"child workflow {state.workflow_id!r} ended {state.status.value}",
            non_retryable=True,
        ),
        cause=event_id,
    )


def _child_running(state: WorkflowState, started: Event) -> Event:
    """The event that tells a parent its child's start was taken by a processor."""
    saga, workflow_id, step = _parent_parts(state.parent or "")
    return Event(
        event_id=started.event_id + ":running",
        workflow_id=workflow_id,
        saga=saga,
        version=0,
        type=EventType.CHILD_RUNNING,
        origin=Origin.PROCESSOR,
        time_ms=started.time_ms,
        step=step,
        name=state.workflow_id,
        cause=started.event_id,
    )


def _parent_parts(parent: str) -> tuple[str, str, str]:
    """``(saga, workflow_id, step)`` of a ``"<saga>/<workflow_id>/<step>"`` parent."""
    saga, _, rest = parent.partition("/")
    workflow_id, _, step = rest.rpartition("/")
    return saga, workflow_id, step


def _child_ended(state: WorkflowState, final: Event) -> Event:
    """The event that tells a parent workflow how its child ended."""
    parent = state.parent or ""
    saga, _, rest = parent.partition("/")
    workflow_id, _, step = rest.rpartition("/")
    return Event(
        event_id=final.event_id + ":parent",
        workflow_id=workflow_id,
        saga=saga,
        version=0,
        type=EventType.CHILD_ENDED,
        origin=Origin.PROCESSOR,
        time_ms=final.time_ms,
        step=step,
        attempt=1,
        name=state.status.value,
        payload=state.result,
        error=state.error,
        cause=final.event_id,
    )
