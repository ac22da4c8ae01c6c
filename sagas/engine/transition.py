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
from sagas.events import CommandKind, Event, EventType, Origin

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


class TransitionBuilder:
    """The decisions, commands and outbound events of one ``Plan.handle`` call."""

    __slots__ = ("decisions", "event", "now_ms", "outbound", "plan")

    def __init__(self, plan: Plan, event: Event, now_ms: int) -> None:
        self.plan = plan
        self.event = event
        self.now_ms = now_ms
        self.decisions: list[Event] = []
        self.outbound: list[Event] = []

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
            if t is EventType.STEP_SCHEDULED or t is EventType.COMPENSATION_SCHEDULED:
                kind = (
                    CommandKind.ACTION if t is EventType.STEP_SCHEDULED else CommandKind.COMPENSATE
                )
                spec = steps[decision.step or ""]
                heartbeat = spec.heartbeat_ms if kind is CommandKind.ACTION else None
                orders.append(CommandOrder(spec.queue, kind, decision, heartbeat))
            elif t in _FINAL_DECISIONS and state.parent is not None:
                self.outbound.append(_child_ended(state, decision))
        return Transition(state, self.decisions, orders, self.outbound)


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
