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
from datetime import timedelta
from types import MappingProxyType
from typing import Any, assert_never

from pydantic import BaseModel, TypeAdapter, ValidationError

from compensations import Recovery, compensation_waves, recovery_for
from sagas.context import WorkflowView
from sagas.definition import StepKind
from sagas.engine.deadlines import DueTime, DueTimeError
from sagas.engine.fold import (
    CLOSE_MARK,
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
    ContinueAsNewNode,
    Node,
    ParallelNode,
    SleepNode,
    StepNode,
    StepSpec,
    UpdateSpec,
    WaitNode,
)
from sagas.engine.state import Phase, WorkflowState
from sagas.engine.timers import TimerId, TimerKind, timer_id
from sagas.engine.transition import Transition, TransitionBuilder, undo_answer
from sagas.errors import SagaError, SerializationError, UnapplicableEventError
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


_ANY: TypeAdapter[Any] = TypeAdapter(Any)

CHILD_TIMED_OUT = "ChildTimedOut"
"""The error type of a child step whose child saga ran past the step's timeout."""


class _RejectedError(Exception):
    """Why an update is refused (internal to :meth:`Plan._update`)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.error = ErrorInfo(kind, message)


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
        "updates",
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
    updates: Mapping[str, UpdateSpec]
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
        updates: Mapping[str, UpdateSpec] | None = None,
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
        # Update payloads are typed like signals (steps read them the same way), but a
        # client cannot send one as a signal.
        init(self, "updates", MappingProxyType(dict(updates or {})))
        init(self, "signals", frozenset(signals) - frozenset(self.updates))
        init(self, "queues", frozenset(spec.queue for spec in frozen_steps.values()))
        init(self, "_specs", specs)
        settable = {
            name: attribute
            for name, attribute in self.visibility.attributes.items()
            if attribute.from_input is None
        }
        init(self, "_fold", Fold(self.nodes, specs, settable))
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
        if state.unanswered:
            waiting = tuple(
                f"{step} (waiting for child saga {self._specs[step].child_saga}: "
                "no processor answers)"
                for step in state.unanswered
                if step in self._specs
            )
            record = replace(
                record,
                current_steps=tuple(s for s in record.current_steps if s not in state.unanswered)
                + waiting,
            )
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

    def fold(
        self, events: Iterable[Event], ended_runs: list[WorkflowState] | None = None
    ) -> WorkflowState | None:
        """The state a workflow's events build, in log order (one copy, changed in place);
        each run it continued as new from is added to ``ended_runs`` as it ended."""
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
                if ended_runs is not None and event.type is EventType.CONTINUED_AS_NEW:
                    ended = state.copy()
                    ended.updated_ms = event.time_ms
                    ended_runs.append(ended)
                self._fold.apply(state, event)
        return state

    def handle(self, state: WorkflowState | None, event: Event, now_ms: int) -> Transition:
        """Apply an input event and decide what follows; raises ``UnapplicableEventError``."""
        run = TransitionBuilder(self, event, now_ms)
        if state is None:
            if event.type is EventType.SIGNAL_WITH_START:
                start, signal = self._signal_with_start(event)
            elif event.type is EventType.START_REQUESTED:
                start, signal = event.payload, None
            else:
                raise self._unapplicable(event, "no workflow with this id")
            if start is None or not is_json(start):
                raise self._unapplicable(event, "the start payload is not valid JSON")
            started = run.decision(EventType.STARTED, payload=start, parent=event.parent)
            new = self._fold.create(started)
            run.decisions.append(started)
            invalid = self._invalid_input(start)
            if invalid is not None:
                # Before any step runs, so there is nothing to compensate: the start fails
                # for good, with the validation error in the status.
                run.emit(new, EventType.FAILED, error=invalid)
                return run.finish(new)
            if signal is not None:
                self._take_signal(run, new, event.name, signal)
        else:
            if event.workflow_id != state.workflow_id:
                raise self._unapplicable(event, f"event is for workflow {event.workflow_id!r}")
            new = state.copy()
            if not self._react(run, new, event):
                return Transition(state)
        self._progress(run, new)
        return run.finish(new)

    def _invalid_input(self, payload: str) -> ErrorInfo | None:
        """Why a start's input does not fit this version's input model, or ``None``."""
        try:
            self.types.parse_input(payload)
        except SerializationError as exc:
            return ErrorInfo("InvalidInput", exc.message, non_retryable=True)
        return None

    def signal_refusal(self, name: str | None, payload: str | None) -> ErrorInfo | None:
        """Why a signal ``name`` with JSON ``payload`` does not fit this version (an unknown
        name, a payload that fails the wait's model), or ``None``; the client asks too."""
        if name not in self.signals:
            known = ", ".join(sorted(self.signals)) or "none"
            return ErrorInfo(
                "UnknownSignal",
                f"saga {self.name!r} version {self.version} has no signal {name!r} "
                f"(its signals: {known})",
                True,
            )
        try:
            value = None if payload is None else json.loads(payload)
        except ValueError:
            return ErrorInfo("InvalidSignalPayload", "the signal payload is not valid JSON", True)
        try:
            self.types.parse_signal(name, value)
        except SerializationError as exc:
            return ErrorInfo("InvalidSignalPayload", _first_line(exc.message), True)
        return None

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
            close_by = new.timers.get(timer_id(TimerKind.SCHEDULE_TO_CLOSE, spec.name))
            if (
                t is EventType.STEP_FAILED
                and close_by is not None
                and close_by <= run.now_ms
                and is_live_answer(new, event)
            ):
                # The worker gave the attempt up at the close (its deadline), a moment
                # before the close's timer fired here: the close is what ended it.
                self._close(run, new, spec.name)
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
                if t is EventType.CHILD_ENDED:
                    self._undo_late_child(run, new, event)
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
            self._take_signal(run, new, event.name, event.payload)
        elif t is EventType.SIGNAL_WITH_START:
            self._take_signal(run, new, event.name, self._signal_with_start(event)[1])
        elif t is EventType.UPDATE_REQUESTED:
            self._update(run, new, event)
        elif t is EventType.COMPENSATE_REQUESTED:
            self._undo_requested(run, new, event)
        elif t is EventType.CHILD_RUNNING:
            apply(new, event)
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
            if kind is TimerKind.STEP_DEADLINE and new.steps[step].child is not None:
                self._child_timed_out(run, new, step)
            elif kind is TimerKind.STEP_DEADLINE:
                run.emit(new, EventType.STEP_TIMED_OUT, step=step, attempt=new.steps[step].attempt)
            elif kind is TimerKind.SCHEDULE_TO_START:
                attempt = new.steps[step].attempt
                bound = _bound_text(self._specs[step].schedule_to_start)
                run.emit(
                    new,
                    EventType.STEP_TIMED_OUT,
                    step=step,
                    attempt=attempt,
                    error=ErrorInfo(
                        "ScheduleToStartTimedOut",
                        f"step {step!r} attempt {attempt} was not started by any worker "
                        f"within its schedule_to_start timeout{bound}",
                    ),
                )
            elif kind is TimerKind.SCHEDULE_TO_CLOSE:
                self._close(run, new, step)
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

    def _child_timed_out(self, run: TransitionBuilder, state: WorkflowState, step: str) -> None:
        """The child of ``step`` ran past its timeout: the step fails for good, and the child
        is asked to cancel, so that it compensates what it did."""
        child = state.steps[step].child or ""
        node = self.nodes[self._specs[step].node]
        assert isinstance(node, ChildNode)
        decision = run.emit(
            state,
            EventType.STEP_TIMED_OUT,
            step=step,
            attempt=1,
            error=ErrorInfo(
                CHILD_TIMED_OUT,
                f"child saga {node.saga!r} of step {step!r} did not end within its "
                f"timeout{_bound_text(node.timeout)}",
                non_retryable=True,
            ),
        )
        run.outbound.append(
            Event(
                event_id=decision.event_id + ":cancel",
                workflow_id=child,
                saga=node.saga,
                version=0,
                type=EventType.CANCEL_REQUESTED,
                origin=Origin.PROCESSOR,
                time_ms=run.now_ms,
                error=decision.error,
                cause=decision.event_id,
            )
        )

    def _undo_late_child(self, run: TransitionBuilder, state: WorkflowState, event: Event) -> None:
        """A child that completed after its step timed out (too late for the cancel sent
        then) is asked to undo itself: this workflow no longer counts on its work."""
        step_run = state.steps.get(event.step or "")
        if (
            event.name != WorkflowStatus.COMPLETED.value
            or step_run is None
            or step_run.child is None
            or step_run.error is None
            or step_run.error.type != CHILD_TIMED_OUT
        ):
            return
        step = event.step or ""
        run.outbound.append(
            Event(
                event_id=event.event_id + ":undo",
                workflow_id=step_run.child,
                saga=self._specs[step].child_saga or "",
                version=0,
                type=EventType.COMPENSATE_REQUESTED,
                origin=Origin.PROCESSOR,
                time_ms=run.now_ms,
                step=step,
                attempt=1,
                parent=f"{self.name}/{state.workflow_id}/{step}",
                cause=event.event_id,
            )
        )

    def _take_signal(
        self, run: TransitionBuilder, state: WorkflowState, name: str | None, payload: str | None
    ) -> None:
        """Receive a signal, or record why it is refused."""
        refusal = (
            ErrorInfo("WorkflowEnded", f"the workflow is {state.status.value}", True)
            if state.status.is_final
            else self.signal_refusal(name, payload)
        )
        if refusal is not None:
            # A payload that is not JSON is left out, as the log's payloads are JSON.
            kept = payload if payload is None or is_json(payload) else None
            # Recorded, never parked and never seen by a step: a typo or a payload that
            # does not fit leaves the workflow waiting for the right signal.
            run.emit(state, EventType.SIGNAL_REJECTED, name=name, payload=kept, error=refusal)
        else:
            run.emit(state, EventType.SIGNAL_RECEIVED, name=name, payload=payload)

    def _signal_with_start(self, event: Event) -> tuple[str | None, str]:
        """The start input and the signal payload a ``signal_with_start`` carries."""
        try:
            both = json.loads(event.payload or "")
            start = both["input"]
            signal = both.get("signal")
        except (ValueError, TypeError, KeyError) as exc:
            raise self._unapplicable(
                event, 'the payload is not a JSON object {"input": ..., "signal": ...}'
            ) from exc
        return json.dumps(start), json.dumps(signal)

    def _update(self, run: TransitionBuilder, state: WorkflowState, event: Event) -> None:
        """Apply an update request, or reject it; the outcome names the request as its cause."""
        name = event.name or ""
        prior = state.updates.get(event.event_id)
        if prior is not None:
            # The same update id again: answer with the outcome recorded the first time.
            outcome = json.loads(prior)
            if "rejected" in outcome:
                kind, message = outcome["rejected"]
                run.emit(
                    state, EventType.UPDATE_REJECTED, name=name, error=ErrorInfo(kind, message)
                )
            else:
                run.emit(state, EventType.UPDATE_COMPLETED, name=name, payload=json.dumps(outcome))
            return
        try:
            result = self._apply_update(state, event)
        except _RejectedError as rejected:
            run.emit(state, EventType.UPDATE_REJECTED, name=name, error=rejected.error)
            return
        run.emit(state, EventType.UPDATE_COMPLETED, name=name, payload=result)

    def _apply_update(self, state: WorkflowState, event: Event) -> str:
        """The JSON outcome of an applicable update; raises ``_RejectedError`` otherwise."""
        spec = self.updates.get(event.name or "")
        if spec is None:
            raise _RejectedError(
                "UnknownUpdate", f"saga {self.name!r} has no update {event.name!r}"
            )
        if state.status.is_final:
            raise _RejectedError("WorkflowEnded", f"the workflow is {state.status.value}")
        if state.error is not None or state.cancel is not None:
            raise _RejectedError("WorkflowEnding", "the workflow is failing or cancelling")
        if spec.before is not None and spec.before in state.steps:
            raise _RejectedError(
                "UpdateTooLate", f"update {spec.name!r} is refused once {spec.before!r} has run"
            )
        try:
            value = spec.payload.validate_json(event.payload or "null")
        except ValidationError as exc:
            # One line a client can show: where each problem is and what it is.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                for e in exc.errors()
            )
            raise _RejectedError(
                "InvalidPayload", f"the payload of {spec.name!r} is invalid: {problems}"
            ) from exc
        view = self._view(state)
        for decider in (spec.check, spec.handler):
            if decider is None:
                continue
            try:
                result = decider(view, value)
            except Exception as exc:
                raise _RejectedError(type(exc).__name__, str(exc)) from exc
        try:
            return json.dumps(
                {
                    "value": json.loads(spec.payload.dump_json(value)),
                    "result": json.loads(_ANY.dump_json(result)),
                }
            )
        except ValueError as exc:
            raise _RejectedError("InvalidResult", f"the result of {spec.name!r}: {exc}") from exc

    def _undo_requested(self, run: TransitionBuilder, state: WorkflowState, event: Event) -> None:
        """A parent asks this completed child to undo itself (or asks again)."""
        reopen = state.status is WorkflowStatus.COMPLETED and state.parent is not None
        answered = bool(state.undo_for) and state.status.is_final
        if not reopen and not answered:
            run.emit(
                state,
                EventType.ANSWER_IGNORED,
                name=EventType.COMPENSATE_REQUESTED.value,
                error=ErrorInfo("NotCompleted", f"the workflow is {state.status.value}"),
            )
            return
        self._fold.apply(state, event)
        if answered:
            run.outbound.append(undo_answer(state, event.event_id + ":again", run.now_ms))

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

    def _close(self, run: TransitionBuilder, state: WorkflowState, step: str) -> None:
        """Fail ``step`` for good: its schedule_to_close passed."""
        attempt = state.steps[step].attempt
        bound = _bound_text(self._specs[step].schedule_to_close)
        run.emit(
            state,
            EventType.STEP_TIMED_OUT,
            step=step,
            attempt=attempt,
            name=CLOSE_MARK,
            error=ErrorInfo(
                "ScheduleToCloseTimedOut",
                f"step {step!r} did not complete within its schedule_to_close "
                f"timeout{bound} ({attempt} attempts)",
                non_retryable=True,
            ),
        )

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
        # Every due time is had before the step is scheduled: one that cannot be had
        # fails the step before a command goes out.
        bounds: list[tuple[TimerKind, int]] = []
        for kind, bound in (
            (TimerKind.SCHEDULE_TO_START, spec.schedule_to_start),
            # Set once, at the first attempt: it bounds them all, retry pauses included.
            (TimerKind.SCHEDULE_TO_CLOSE, spec.schedule_to_close if attempt == 1 else None),
        ):
            if bound is not None:
                bound_ms = self._due_ms(run, state, bound, spec.name, attempt)
                if bound_ms is None:
                    return
                bounds.append((kind, bound_ms))
        run.emit(state, EventType.STEP_SCHEDULED, step=spec.name, attempt=attempt, due_ms=due)
        for kind, bound_ms in bounds:
            run.emit(
                state,
                EventType.TIMER_STARTED,
                step=spec.name,
                attempt=attempt,
                name=timer_id(kind, spec.name),
                due_ms=bound_ms,
            )

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
            case ContinueAsNewNode():
                payload = self._next_input(run, state, node)
                previous = state.run_id or None
                ended = state.copy()
                ended.updated_ms = run.now_ms
                run.ended_runs.append(ended)
                run.emit(state, EventType.CONTINUED_AS_NEW, step=node.name, payload=payload)
                run.emit(
                    state, EventType.STARTED, payload=payload, name=previous, parent=state.parent
                )
            case _:
                assert_never(node)

    def _start_child(self, run: TransitionBuilder, state: WorkflowState, node: ChildNode) -> None:
        payload = self._child_input(run, state, node)
        child_id = f"{state.workflow_id}/{node.step}"
        due = None if node.start_timeout_ms is None else run.now_ms + node.start_timeout_ms
        deadline = None
        if node.timeout is not None:
            deadline = self._due_ms(run, state, node.timeout, node.step, 1)
            if deadline is None:
                return
        decision = run.emit(
            state,
            EventType.CHILD_STARTED,
            step=node.step,
            name=child_id,
            payload=payload,
            due_ms=due,
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
        if deadline is not None:
            run.emit(
                state,
                EventType.TIMER_STARTED,
                step=node.step,
                attempt=1,
                name=timer_id(TimerKind.STEP_DEADLINE, node.step),
                due_ms=deadline,
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

    def _next_input(
        self, run: TransitionBuilder, state: WorkflowState, node: ContinueAsNewNode
    ) -> str:
        try:
            value = node.input(self._view(state))
        except Exception as exc:
            raise self._unapplicable(
                run.event, f"the input of continue_as_new {node.name!r} raised {exc!r}"
            ) from exc
        if not isinstance(value, node.input_model):
            raise self._unapplicable(
                run.event,
                f"continue_as_new {node.name!r} returned {type(value).__name__}, "
                f"not {node.input_model.__name__}",
            )
        return value.model_dump_json()

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
                    # ``step`` keeps naming the step whose failure started the compensation
                    # (none for a cancel); ``name`` is the compensation that could not be done.
                    run.emit(
                        state, EventType.FAILED, step=state.failed_step, name=name, error=r.error
                    )
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


def _bound_text(due: DueTime | None) -> str:
    """`` of <duration>`` for a constant bound; nothing for one computed per workflow."""
    if due is None or due.fixed_ms is None:
        return ""
    return f" of {timedelta(milliseconds=due.fixed_ms)}"


def _first_line(text: str) -> str:
    """Pydantic's message folded onto one line, so a rejection reads as one."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
