"""The compiled plan of one saga version: plain data plus pure functions, no I/O, no clock.

``Plan.handle`` is what the saga processor (and the test kit) calls for every
input event; ``Plan.fold`` rebuilds a state from the log (see :mod:`sagas.engine.fold`).
User payloads stay opaque JSON text on this path: only branch choosers and child
inputs, which are user code, parse them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, assert_never

from pydantic import BaseModel, TypeAdapter

from compensations import Recovery, compensation_waves, recovery_for
from sagas.context import WorkflowView
from sagas.definition import StepKind
from sagas.engine.deadlines import DueTime, DueTimeError
from sagas.engine.fold import (
    COMPENSATE_MARK,
    Fold,
    can_cancel,
    cancel_reason,
    ignored_inputs,
    is_live_answer,
    is_live_heartbeat,
    refused_answers,
)
from sagas.engine.nodes import (
    BranchNode,
    ChildNode,
    Node,
    ParallelNode,
    SleepNode,
    StepNode,
    StepSpec,
    WaitNode,
)
from sagas.engine.state import Phase, WorkflowState
from sagas.engine.timers import TimerId, TimerKind, timer_id
from sagas.engine.transition import Transition, TransitionBuilder
from sagas.errors import SagaError, UnapplicableEventError
from sagas.events import (
    ErrorInfo,
    Event,
    EventType,
    Origin,
    StatusRecord,
    WorkflowStatus,
)
from sagas.payloads import PayloadTypes, is_json, join_object
from sagas.visibility import Visibility

__all__ = ["Plan", "Transition"]

_ANSWERS = frozenset(
    {
        EventType.STEP_SUCCEEDED,
        EventType.STEP_FAILED,
        EventType.COMPENSATION_SUCCEEDED,
        EventType.COMPENSATION_FAILED,
        EventType.CHILD_ENDED,
    }
)


def timer_fired(state: WorkflowState, timer: str, now_ms: int) -> Event:
    """The event that fires ``timer`` (an encoded timer id) of ``state``; the processor and
    the test kit hand it to :meth:`Plan.handle` when the timer is due."""
    due_ms = state.timers[timer]
    return Event(
        event_id=f"{state.workflow_id}/{timer}/{due_ms}",
        workflow_id=state.workflow_id,
        saga=state.saga,
        version=state.version,
        type=EventType.TIMER_FIRED,
        origin=Origin.PROCESSOR,
        time_ms=now_ms,
        name=timer,
        due_ms=due_ms,
    )


class Plan:
    """A saga version compiled to a state machine over :class:`~sagas.engine.state.WorkflowState`.

    Protocol the processor follows: for each input event, ``handle(state, event,
    now_ms)``; when a timer of ``state.timers`` is due, ``handle`` with an event of
    type ``timer_fired``, ``name`` = the timer id and origin ``processor`` (the
    transition then lists that event first among its decisions, to be appended
    to the log). A ``start_requested`` with version 0 means "the newest version";
    ``cancel_requested`` and ``terminate_requested`` carry their reason in
    ``error.message`` (or as payload text).

    Cancel before the point of no return compensates and ends ``CANCELLED``; a step
    in flight settles first. After a pivot or retriable step has succeeded, a cancel
    is refused (recorded as ``answer_ignored`` naming ``cancel``) and the workflow
    goes on: use terminate to stop it.

    A plan only decides: it knows no topic (its transitions carry command orders; the
    runtime makes them records and says where answers go) and holds no step function
    (the step execution finds those in the definition). The user code it does call, branch
    choosers and child inputs, are deciders: pure functions of the workflow view whose
    outcome the plan records as a decision, so a replay never calls them again. It is
    immutable once compiled and shared by every workflow of its version.
    """

    __slots__ = (
        "_fold",
        "_group_of",
        "_specs",
        "name",
        "nodes",
        "queues",
        "signals",
        "steps",
        "types",
        "version",
        "visibility",
    )

    name: str
    version: int
    visibility: Visibility
    nodes: tuple[Node, ...]
    steps: Mapping[str, StepSpec]
    types: PayloadTypes
    signals: frozenset[str]
    queues: frozenset[str]
    _fold: Fold
    _specs: dict[str, StepSpec]
    _group_of: Mapping[str, str | None]

    def __init__(
        self,
        *,
        name: str,
        version: int,
        nodes: tuple[Node, ...],
        steps: Mapping[str, StepSpec],
        input_model: type[BaseModel],
        results: Mapping[str, TypeAdapter[Any]],
        signals: Mapping[str, TypeAdapter[Any]],
        visibility: Visibility | None = None,
    ) -> None:
        # The hot paths read the plain dict; callers get a read-only view of it.
        specs = dict(steps)
        frozen_steps = MappingProxyType(specs)
        init = object.__setattr__
        init(self, "name", name)
        init(self, "version", version)
        # Search attributes, queries and retention: the processors' business, carried here
        # so that each version of a saga keeps its own.
        init(self, "visibility", visibility if visibility is not None else Visibility())
        init(self, "nodes", tuple(nodes))
        init(self, "steps", frozen_steps)
        init(self, "types", PayloadTypes(name, input_model, dict(results), dict(signals)))
        init(self, "signals", frozenset(signals))
        init(self, "queues", frozenset(spec.queue for spec in frozen_steps.values()))
        init(self, "_specs", specs)
        init(self, "_fold", Fold(self.nodes, specs))
        init(
            self,
            "_group_of",
            MappingProxyType({name: spec.group for name, spec in frozen_steps.items()}),
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a compiled plan cannot change (tried to set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a compiled plan cannot change (tried to delete {name!r})")

    def __repr__(self) -> str:
        return f"Plan({self.name!r}, version={self.version}, nodes={[n.name for n in self.nodes]})"

    def status_record(self, state: WorkflowState) -> StatusRecord:
        """The workflow's status summary, naming a wait it is in even when it has no timeout
        (the state alone knows a wait only by its timeout timer)."""
        record = state.status_record()
        if (
            state.status is WorkflowStatus.RUNNING
            and state.entered
            and state.cursor < len(self.nodes)
        ):
            node = self.nodes[state.cursor]
            if isinstance(node, WaitNode) and node.name not in record.current_steps:
                return replace(record, current_steps=(*record.current_steps, node.name))
        return record

    def fold_into(self, state: WorkflowState, event: Event) -> None:
        """Fold ``event`` into ``state`` in place (for callers that own ``state``)."""
        self._fold.apply(state, event)

    def fold(self, events: Iterable[Event]) -> WorkflowState | None:
        """The state a workflow's events build, in log order (one copy, changed in place)."""
        state: WorkflowState | None = None
        events = list(events)
        # The processor never applied an answer whose result it refused as too large:
        # its own step_failed, later in the log, took the answer's place.
        refused = refused_answers(events)
        # Nor an input it recorded as ignored, though the log may show it before the
        # decision that made the processor ignore it.
        ignored = ignored_inputs(events)
        for event in events:
            if event.origin is not Origin.PROCESSOR and (
                event.event_id in ignored
                or (
                    refused
                    and event.type is EventType.STEP_SUCCEEDED
                    and (event.step, event.attempt) in refused
                )
            ):
                continue
            if state is None:
                if event.type is EventType.STARTED:
                    state = self._fold.create(event)
            else:
                self._fold.apply(state, event)
        return state

    def handle(self, state: WorkflowState | None, event: Event, now_ms: int) -> Transition:
        """Apply an input event and decide what follows; raises ``UnapplicableEventError``."""
        run = TransitionBuilder(self, event, now_ms)
        if state is None:
            if event.type is not EventType.START_REQUESTED:
                raise self._unapplicable(event, "no workflow with this id")
            if event.payload is None or not is_json(event.payload):
                raise self._unapplicable(event, "the start payload is not valid JSON")
            started = run.decision(EventType.STARTED, payload=event.payload, parent=event.parent)
            new = self._fold.create(started)
            run.decisions.append(started)
        else:
            if event.workflow_id != state.workflow_id:
                raise self._unapplicable(event, f"event is for workflow {event.workflow_id!r}")
            new = state.copy()
            if not self._react(run, new, event):
                return Transition(state)
        self._progress(run, new)
        return run.finish(new)

    def _unapplicable(self, event: Event, message: str) -> UnapplicableEventError:
        return UnapplicableEventError(
            f"cannot apply {event.type.value}: {message}",
            saga=self.name,
            workflow_id=event.workflow_id,
            step=event.step,
            attempt=event.attempt or None,
        )

    def _react(self, run: TransitionBuilder, new: WorkflowState, event: Event) -> bool:
        """Apply an input to ``new`` with its direct reactions; False if it is a stale timer.

        Every input is folded in exactly as a replay of the log folds it, then the
        reactions (checked against the state before it) follow as decisions.
        """
        t = event.type
        apply = self._fold.apply
        if t is EventType.START_REQUESTED:
            run.emit(new, EventType.START_IGNORED)
        elif t in _ANSWERS:
            spec = self._specs.get(event.step or "")
            if spec is None:
                raise self._unapplicable(event, f"unknown step {event.step!r}")
            if (t is EventType.STEP_SUCCEEDED or t is EventType.CHILD_ENDED) and (
                event.payload is not None and not is_json(event.payload)
            ):
                raise self._unapplicable(event, "the payload is not valid JSON")
            live = is_live_answer(new, event)
            cancel_pending = new.cancel is not None and spec.compensation is None
            apply(new, event)
            if not live:
                run.emit(
                    new,
                    EventType.ANSWER_IGNORED,
                    step=event.step,
                    attempt=event.attempt,
                    name=t.value,
                )
            elif cancel_pending and new.cancel is None:
                run.emit(
                    new,
                    EventType.ANSWER_IGNORED,
                    name="cancel",
                    error=ErrorInfo(
                        "CancelRefused", f"step {spec.name!r} passed the point of no return"
                    ),
                )
        elif t is EventType.HEARTBEAT:
            # No decision: a heartbeat only moves its attempt's deadline and keeps its
            # details, and the log holds it already, so a replay folds it the same way.
            if event.step not in self._specs or not is_live_heartbeat(new, event):
                return False
            if event.payload is not None and not is_json(event.payload):
                raise self._unapplicable(event, "the heartbeat details are not valid JSON")
            apply(new, event)
        elif t is EventType.SIGNAL:
            if event.name not in self.signals:
                raise self._unapplicable(event, f"unknown signal {event.name!r}")
            if event.payload is not None and not is_json(event.payload):
                raise self._unapplicable(event, "the signal payload is not valid JSON")
            if new.status.is_final:
                run.emit(
                    new,
                    EventType.SIGNAL_REJECTED,
                    name=event.name,
                    payload=event.payload,
                    error=ErrorInfo("WorkflowEnded", f"the workflow is {new.status.value}"),
                )
            else:
                run.emit(new, EventType.SIGNAL_RECEIVED, name=event.name, payload=event.payload)
        elif t is EventType.CANCEL_REQUESTED:
            accepted = can_cancel(new)
            why = (
                f"the workflow is {new.status.value}"
                if new.status.is_final or new.status is WorkflowStatus.COMPENSATING
                else "the workflow passed the point of no return"
                if new.committed
                else "the workflow is already failing or cancelling"
            )
            apply(new, event)
            if accepted:
                run.to_children(new, EventType.CANCEL_REQUESTED, event)
            else:
                run.emit(
                    new,
                    EventType.ANSWER_IGNORED,
                    name="cancel",
                    error=ErrorInfo("CancelRefused", why),
                )
        elif t is EventType.TERMINATE_REQUESTED:
            if new.status.is_final:
                run.emit(
                    new,
                    EventType.ANSWER_IGNORED,
                    name="terminate",
                    error=ErrorInfo("WorkflowEnded", f"the workflow is {new.status.value}"),
                )
            else:
                run.to_children(new, EventType.TERMINATE_REQUESTED, event)
                run.emit(
                    new,
                    EventType.TERMINATED,
                    error=ErrorInfo("Terminated", cancel_reason(event), non_retryable=True),
                )
        elif t is EventType.TIMER_FIRED:
            timer = event.name or ""
            if timer not in new.timers:
                return False
            run.decisions.append(event)
            apply(new, event)
            kind, step = TimerId.decode(timer)
            if kind is TimerKind.STEP_DEADLINE:
                run.emit(new, EventType.STEP_TIMED_OUT, step=step, attempt=new.steps[step].attempt)
            elif kind is TimerKind.HEARTBEAT:
                spec = self._specs[step]
                run.emit(
                    new,
                    EventType.STEP_TIMED_OUT,
                    step=step,
                    attempt=new.steps[step].attempt,
                    error=ErrorInfo(
                        "HeartbeatTimedOut",
                        f"step {step!r} attempt {new.steps[step].attempt} sent no heartbeat "
                        f"for {spec.heartbeat_ms} ms",
                    ),
                )
            elif kind is TimerKind.COMPENSATION_DEADLINE:
                run.emit(
                    new,
                    EventType.STEP_TIMED_OUT,
                    step=step,
                    attempt=new.steps[step].comp_attempt,
                    name=COMPENSATE_MARK,
                )
        else:
            raise self._unapplicable(event, "not an input event")
        return True

    def _progress(self, run: TransitionBuilder, state: WorkflowState) -> None:
        """Take every decision the state calls for, until it waits for something outside."""
        for _ in range(10_000):
            if state.status.is_final or not self._decide(run, state):
                return
        raise SagaError("the plan did not settle", saga=self.name, workflow_id=state.workflow_id)

    def _decide(self, run: TransitionBuilder, state: WorkflowState) -> bool:
        """Emit the next decisions; False when there is nothing to decide."""
        emitted = False
        for name, step_run in state.steps.items():
            if step_run.phase is Phase.RETRY_PENDING:
                due = run.now_ms + self._specs[name].retry.backoff_ms(step_run.attempt)
                run.emit(
                    state,
                    EventType.RETRY_SCHEDULED,
                    step=name,
                    attempt=step_run.attempt,
                    due_ms=due,
                )
                emitted = True
            elif step_run.phase is Phase.READY:
                self._schedule(run, state, self._specs[name], step_run.attempt + 1)
                emitted = True
        if emitted:
            return True
        if state.error is not None or state.cancel is not None:
            return self._unwind(run, state)
        if state.cursor >= len(self.nodes):
            results = {name: state.steps[name].result or "null" for name in state.completed}
            run.emit(state, EventType.COMPLETED, payload=join_object(results))
            return True
        if state.entered:
            return False
        self._enter(run, state, self.nodes[state.cursor])
        return True

    def _schedule(
        self, run: TransitionBuilder, state: WorkflowState, spec: StepSpec, attempt: int
    ) -> None:
        if spec.timeout_fn is not None:
            due = self._due_ms(
                run, state, DueTime(None, spec.timeout_fn, what="timeout"), spec.name, attempt
            )
            if due is None:
                return
        else:
            due = None if spec.timeout_ms is None else run.now_ms + spec.timeout_ms
        run.emit(state, EventType.STEP_SCHEDULED, step=spec.name, attempt=attempt, due_ms=due)

    def _due_ms(
        self,
        run: TransitionBuilder,
        state: WorkflowState,
        due: DueTime,
        node: str,
        attempt: int = 0,
    ) -> int | None:
        """The due time ``due`` gives now, or None after recording why it could not be had.

        A function that raises is a bug in the saga, not a passing fault: the node fails
        for good (``decider_failed``, non-retryable) and the workflow compensates.
        """
        try:
            return due.due_ms(run.now_ms, lambda: self._view(state))
        except DueTimeError as exc:
            run.emit(
                state,
                EventType.DECIDER_FAILED,
                step=node,
                attempt=attempt,
                error=ErrorInfo(exc.type, f"{node!r}: {exc.message}", non_retryable=True),
            )
            return None

    def _enter(self, run: TransitionBuilder, state: WorkflowState, node: Node) -> None:
        match node:
            case StepNode():
                self._schedule(run, state, self._specs[node.step], 1)
            case ParallelNode():
                for name in node.steps:
                    if state.error is None:
                        self._schedule(run, state, self._specs[name], 1)
            case SleepNode():
                due = self._due_ms(run, state, node.due, node.name)
                if due is not None:
                    run.emit(
                        state,
                        EventType.TIMER_STARTED,
                        step=node.name,
                        name=timer_id(TimerKind.SLEEP, node.name),
                        due_ms=due,
                    )
            case WaitNode():
                due = (
                    None
                    if node.timeout is None
                    else self._due_ms(run, state, node.timeout, node.name)
                )
                if node.timeout is not None and due is None:
                    return
                run.emit(
                    state,
                    EventType.WAIT_STARTED,
                    step=node.name,
                    name=",".join(sorted(node.signals)),
                    due_ms=due,
                )
            case BranchNode():
                run.emit(
                    state,
                    EventType.BRANCH_TAKEN,
                    step=node.name,
                    name=self._choose(run, state, node),
                )
            case ChildNode():
                self._start_child(run, state, node)
            case _:
                assert_never(node)

    def _start_child(self, run: TransitionBuilder, state: WorkflowState, node: ChildNode) -> None:
        payload = self._child_input(run, state, node)
        child_id = f"{state.workflow_id}/{node.step}"
        decision = run.emit(
            state, EventType.CHILD_STARTED, step=node.step, name=child_id, payload=payload
        )
        run.outbound.append(
            Event(
                event_id=decision.event_id + ":start",
                workflow_id=child_id,
                saga=node.saga,
                version=0,
                type=EventType.START_REQUESTED,
                origin=Origin.PROCESSOR,
                time_ms=run.now_ms,
                payload=payload,
                parent=f"{self.name}/{state.workflow_id}/{node.step}",
                cause=decision.event_id,
            )
        )

    def _view(self, state: WorkflowState) -> WorkflowView[Any]:
        """A typed view of ``state`` for user code (branch choosers, child inputs)."""
        return WorkflowView(
            types=self.types,
            workflow_id=state.workflow_id,
            version=state.version,
            input_json=state.input,
            results={n: json.loads(state.steps[n].result or "null") for n in state.completed},
            signals={n: json.loads(p) for n, p in state.signals.items()},
        )

    def _choose(self, run: TransitionBuilder, state: WorkflowState, node: BranchNode) -> str:
        try:
            chosen = node.choose(self._view(state))
        except Exception as exc:
            raise self._unapplicable(run.event, f"branch {node.name!r} raised {exc!r}") from exc
        name = chosen if isinstance(chosen, str) else getattr(chosen, "name", None)
        if name not in {target for target, _ in node.targets}:
            raise self._unapplicable(
                run.event, f"branch {node.name!r} chose {chosen!r}, not one of its targets"
            )
        return str(name)

    def _child_input(self, run: TransitionBuilder, state: WorkflowState, node: ChildNode) -> str:
        try:
            value = node.input(self._view(state))
            return value.model_dump_json()
        except Exception as exc:
            raise self._unapplicable(
                run.event, f"the input of child step {node.step!r} raised {exc!r}"
            ) from exc

    def _unwind(self, run: TransitionBuilder, state: WorkflowState) -> bool:
        """Decide for a failing or cancelled workflow once nothing forward is in flight."""
        if any(r.phase is Phase.SCHEDULED for r in state.steps.values()):
            return False
        if state.error is not None:
            failed = self._specs.get(state.failed_step or "")
            recovery = recovery_for(
                committed=state.committed,
                failed_step_retriable=failed is not None and failed.kind is StepKind.RETRIABLE,
            )
            if recovery is Recovery.FAIL:
                run.emit(state, EventType.FAILED, step=state.failed_step, error=state.error)
                return True
        done = [n for n in state.completed if self._specs[n].compensatable]
        for wave in compensation_waves(done, self._group_of):
            runs = [(name, state.steps[name]) for name in wave]
            if all(r.phase is Phase.COMPENSATED for _, r in runs):
                continue
            for name, r in runs:
                if r.phase is Phase.COMP_FAILED:
                    run.emit(state, EventType.FAILED, step=name, error=r.error)
                    return True
            emitted = False
            for name, r in runs:
                if r.phase is Phase.SUCCEEDED or r.phase is Phase.COMP_READY:
                    self._compensate(run, state, name, r.comp_attempt + 1)
                    emitted = True
                elif r.phase is Phase.COMP_RETRY_PENDING:
                    undo = self._specs[name].compensation
                    assert undo is not None
                    run.emit(
                        state,
                        EventType.COMPENSATION_RETRY_SCHEDULED,
                        step=name,
                        attempt=r.comp_attempt,
                        due_ms=run.now_ms + undo.retry.backoff_ms(r.comp_attempt),
                    )
                    emitted = True
            return emitted
        if state.cancel is not None:
            run.emit(
                state,
                EventType.CANCELLED,
                step=state.failed_step,
                error=state.error or ErrorInfo("Cancelled", state.cancel),
            )
        else:
            run.emit(state, EventType.COMPENSATED, step=state.failed_step, error=state.error)
        return True

    def _compensate(
        self, run: TransitionBuilder, state: WorkflowState, name: str, attempt: int
    ) -> None:
        undo = self._specs[name].compensation
        assert undo is not None
        due = None if undo.timeout_ms is None else run.now_ms + undo.timeout_ms
        run.emit(state, EventType.COMPENSATION_SCHEDULED, step=name, attempt=attempt, due_ms=due)
