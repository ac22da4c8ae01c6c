"""The pure fold of a workflow's events into its state.

Every fact a state holds comes from one event of the log (an input or a decision),
so that rebuilding state from the log needs no clock, no user code and no side
effect. Changes that follow from the plan's fixed shape (moving to the next node,
taking a signal that was waiting, failing for good after the last attempt) are
derived here; choices that need the clock or user code are decisions that carry
their outcome (``due_ms``, the branch target, the child input).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from compensations import retry_compensation
from sagas.compact_json import compact_json
from sagas.definition import StepKind
from sagas.engine.nodes import BranchNode, Node, ParallelNode, StepSpec, WaitNode
from sagas.engine.state import Phase, StepRun, WorkflowState
from sagas.engine.timers import TimerId, TimerKind, node_of_timer, timer_id
from sagas.errors import SagaError
from sagas.events import ErrorInfo, Event, EventType, Origin, WorkflowStatus
from sagas.visibility import SearchAttribute, step_value

COMPENSATE_MARK = "compensate"
"""``name`` of a ``step_timed_out`` decision about a compensation attempt."""

CLOSE_MARK = "schedule_to_close"
"""``name`` of a ``step_timed_out`` decision that fails a step for good, in flight or
between attempts: its schedule_to_close passed."""

STARTED_MARK = "started"
"""``name`` of a heartbeat that reports an attempt started (it carries no details): a
worker sends one when the command has a ``start_deadline_ms``."""

_WAITING = (Phase.RETRY_PENDING, Phase.BACKOFF, Phase.READY)
_IN_FLIGHT = (Phase.SCHEDULED,)
_CLOSABLE = (Phase.SCHEDULED, *_WAITING)


RESULT_TOO_LARGE = "ResultTooLarge"
"""The error type of the ``step_failed`` a saga processor records in place of a step
result too large to keep; a fold skips the refused answer it names."""


def refused_answers(events: Sequence[Event]) -> set[tuple[str | None, int]]:
    """The (step, attempt) answers whose results the processor refused as too large."""
    return {
        (e.step, e.attempt)
        for e in events
        if e.type is EventType.STEP_FAILED
        and e.origin is Origin.PROCESSOR
        and e.error is not None
        and e.error.type == RESULT_TOO_LARGE
    }


def ignored_inputs(events: Sequence[Event]) -> set[str]:
    """The ids of the inputs the processor recorded as ignored at every occurrence.

    The processor appends an input's decisions after whatever else arrived meanwhile, so
    the log can hold an answer before the decision that ended its workflow (or timed its
    attempt out) although the processor applied that decision first and ignored the
    answer: a fold in log order would apply it. The processor says so in the log, with
    an ``answer_ignored`` naming the input's type (``cancel`` for a refused cancel request)
    and caused by it. Re-sent copies of an answer share its id; once one is ignored every
    later one is, so the input is skipped only when each of its copies was ignored.
    """
    copies: dict[str, int] = {}
    ignored: dict[str, int] = {}
    types: dict[str, EventType] = {}
    for e in events:
        if e.origin is not Origin.PROCESSOR:
            copies[e.event_id] = copies.get(e.event_id, 0) + 1
            types[e.event_id] = e.type
    for e in events:
        if e.type is EventType.ANSWER_IGNORED and e.origin is Origin.PROCESSOR and e.cause:
            input_type = types.get(e.cause)
            if input_type is not None and e.name == _IGNORED_NAME.get(input_type):
                ignored[e.cause] = ignored.get(e.cause, 0) + 1
    return {event_id for event_id, n in ignored.items() if n >= copies[event_id]}


def timed_out_error(step: str, attempt: int, compensation: bool = False) -> ErrorInfo:
    """The error recorded for an attempt that passed its timeout."""
    what = "compensation of step" if compensation else "step"
    return ErrorInfo("StepTimedOut", f"{what} {step!r} attempt {attempt} timed out")


def is_live_answer(state: WorkflowState, event: Event) -> bool:
    """Whether an answer event matches an attempt that is still waiting for it."""
    if state.status.is_final:
        return False
    run = state.steps.get(event.step or "")
    if run is None:
        return False
    t = event.type
    if t is EventType.STEP_SUCCEEDED or t is EventType.STEP_FAILED:
        return run.phase is Phase.SCHEDULED and run.child is None and run.attempt == event.attempt
    if t is EventType.COMPENSATION_SUCCEEDED or t is EventType.COMPENSATION_FAILED:
        return run.phase is Phase.COMP_SCHEDULED and run.comp_attempt == event.attempt
    if t is EventType.CHILD_ENDED:
        return run.phase is Phase.SCHEDULED and run.child is not None
    return False


def is_live_heartbeat(state: WorkflowState, event: Event) -> bool:
    """Whether a heartbeat is from the attempt of its step that is in flight."""
    if state.status.is_final:
        return False
    run = state.steps.get(event.step or "")
    return (
        run is not None
        and run.phase is Phase.SCHEDULED
        and run.child is None
        and run.attempt == event.attempt
    )


def can_cancel(state: WorkflowState) -> bool:
    """Whether a cancel request is taken (before the point of no return, not yet ending)."""
    return (
        state.status is WorkflowStatus.RUNNING
        and state.cancel is None
        and state.error is None
        and not state.committed
    )


class Fold:
    """Applies events to a state in place (:class:`~sagas.engine.plan.Plan` copies first)."""

    __slots__ = ("attributes", "end", "nodes", "steps")

    def __init__(
        self,
        nodes: Sequence[Node],
        steps: Mapping[str, StepSpec],
        attributes: Mapping[str, SearchAttribute[Any]] | None = None,
    ) -> None:
        self.nodes = nodes
        self.steps = steps
        self.end = len(nodes)
        self.attributes = attributes or {}
        """The search attributes steps may set, by name."""

    def create(self, event: Event) -> WorkflowState:
        """The state a ``started`` decision begins."""
        return WorkflowState(
            workflow_id=event.workflow_id,
            saga=event.saga,
            version=event.version,
            status=WorkflowStatus.RUNNING,
            started_ms=event.time_ms,
            updated_ms=event.time_ms,
            input=event.payload or "{}",
            parent=event.parent,
            run_id=event.event_id,
        )

    def apply(self, state: WorkflowState, event: Event) -> None:
        """Fold ``event`` into ``state``; an event that does not apply changes nothing.

        ``updated_ms`` follows the processor's own events only, so that an input the
        processor refused (and a replay meets in the log) leaves no trace.
        """
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, state, event)
        if event.origin is Origin.PROCESSOR and event.type not in NO_TRACE:
            state.updated_ms = event.time_ms

    def _advance(self, state: WorkflowState, target: int) -> None:
        state.cursor = target
        state.entered = False

    def _fail(
        self, state: WorkflowState, name: str, error: ErrorInfo, on_failure: int | None
    ) -> None:
        if on_failure is not None and state.cancel is None and state.error is None:
            self._advance(state, on_failure)
            return
        if state.error is None:
            state.error = error
            state.failed_step = name
        self._abandon(state)

    def _abandon(self, state: WorkflowState) -> None:
        """Stop what is not in flight: pending retries, sleeps and waits."""
        for name, run in state.steps.items():
            if run.phase in _WAITING:
                run.phase = Phase.FAILED
                state.timers.pop(timer_id(TimerKind.RETRY, name), None)
                state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_CLOSE, name), None)
        for timer in [t for t in state.timers if node_of_timer(t) is not None]:
            del state.timers[timer]

    def _step_scheduled(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        run = state.steps.get(step)
        if run is None:
            state.steps[step] = StepRun(Phase.SCHEDULED, event.attempt)
        else:
            run.phase = Phase.SCHEDULED
            run.attempt = event.attempt
        if event.due_ms is not None:
            state.timers[timer_id(TimerKind.STEP_DEADLINE, step)] = event.due_ms
        # A new attempt has no heartbeat deadline until it beats: before it has started,
        # its timeout governs (a command waiting for a worker is not a hung one).
        state.timers.pop(timer_id(TimerKind.HEARTBEAT, step), None)
        state.entered = True

    def _heartbeat(self, state: WorkflowState, event: Event) -> None:
        if not is_live_heartbeat(state, event):
            return
        step = event.step or ""
        # Any heartbeat says a worker started the attempt.
        state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_START, step), None)
        if event.name == STARTED_MARK:
            return  # a start report: no details, and the heartbeat deadline waits for a beat
        state.heartbeats[step] = event.payload if event.payload is not None else "null"
        spec = self.steps[step]
        if spec.heartbeat_ms is not None:
            state.timers[timer_id(TimerKind.HEARTBEAT, step)] = event.time_ms + spec.heartbeat_ms

    def _child_started(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        state.steps[step] = StepRun(Phase.SCHEDULED, 1, child=event.name)
        if event.due_ms is not None:
            state.timers[timer_id(TimerKind.CHILD_START, step)] = event.due_ms
        state.entered = True

    def _child_running(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        state.timers.pop(timer_id(TimerKind.CHILD_START, step), None)
        if step in state.unanswered:
            state.unanswered.remove(step)

    def _succeeded(self, state: WorkflowState, event: Event) -> None:
        if not is_live_answer(state, event):
            return
        step = event.step or ""
        if event.type is EventType.CHILD_ENDED and event.name != WorkflowStatus.COMPLETED.value:
            self._failed(state, event)
            return
        run = state.steps[step]
        run.phase = Phase.SUCCEEDED
        run.result = event.payload if event.payload is not None else "null"
        state.timers.pop(timer_id(TimerKind.STEP_DEADLINE, step), None)
        state.timers.pop(timer_id(TimerKind.HEARTBEAT, step), None)
        state.heartbeats.pop(step, None)
        state.timers.pop(timer_id(TimerKind.CHILD_START, step), None)
        state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_START, step), None)
        state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_CLOSE, step), None)
        state.completed.append(step)
        if event.search_attributes is not None:
            self._set_search_attributes(state, event.search_attributes)
        spec = self.steps[step]
        if spec.kind is not StepKind.COMPENSATABLE:
            state.committed = True
            state.cancel = None
        if state.error is not None or state.cancel is not None:
            return
        node = self.nodes[spec.node]
        if isinstance(node, ParallelNode) and any(
            state.steps[m].phase is not Phase.SUCCEEDED for m in node.steps if m in state.steps
        ):
            return
        self._advance(state, node.next)

    def _set_search_attributes(self, state: WorkflowState, text: str) -> None:
        """Take the values an answer's action set that the saga declares for steps, of the
        declared types: an answer written by another participant may carry anything, and
        its mistake costs those values, not the workflow."""
        try:
            values = json.loads(text)
        except ValueError:
            return
        if not isinstance(values, dict):
            return
        for name, value in values.items():
            attribute = self.attributes.get(name)
            if attribute is None:
                continue
            try:
                state.search_attributes[name] = step_value(attribute, value)
            except SagaError:
                continue

    def _failed(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        if event.type is EventType.STEP_TIMED_OUT:
            if event.name == COMPENSATE_MARK:
                self._comp_failed(state, event)
                return
            run = state.steps.get(step)
            phases = _CLOSABLE if event.name == CLOSE_MARK else _IN_FLIGHT
            if run is None or run.phase not in phases or run.attempt != event.attempt:
                return
        elif not is_live_answer(state, event):
            return
        run = state.steps[step]
        spec = self.steps[step]
        state.timers.pop(timer_id(TimerKind.STEP_DEADLINE, step), None)
        state.timers.pop(timer_id(TimerKind.HEARTBEAT, step), None)
        state.timers.pop(timer_id(TimerKind.CHILD_START, step), None)
        state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_START, step), None)
        state.timers.pop(timer_id(TimerKind.RETRY, step), None)
        error = event.error
        if error is None:
            if event.type is EventType.STEP_TIMED_OUT:
                error = timed_out_error(step, run.attempt)
            elif event.type is EventType.CHILD_ENDED:
                error = ErrorInfo("ChildSagaEnded", f"child workflow ended {event.name}", True)
            else:
                error = ErrorInfo("StepFailed", "the step failed without an error")
        run.error = error
        if state.error is not None or state.cancel is not None:
            run.phase = Phase.FAILED
            state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_CLOSE, step), None)
            return
        retryable = not (error.non_retryable or spec.retry.is_non_retryable_name(error.type))
        if retryable and spec.retry.allows_attempt(run.attempt + 1):
            run.phase = Phase.RETRY_PENDING
            return
        run.phase = Phase.FAILED
        state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_CLOSE, step), None)
        self._fail(state, step, error, spec.on_failure)

    def _retry_scheduled(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        run = state.steps.get(step)
        if run is not None and run.phase is Phase.RETRY_PENDING and event.due_ms is not None:
            run.phase = Phase.BACKOFF
            state.timers[timer_id(TimerKind.RETRY, step)] = event.due_ms

    def _timer_fired(self, state: WorkflowState, event: Event) -> None:
        timer = event.name or ""
        if state.timers.pop(timer, None) is None:
            return
        kind, name = TimerId.decode(timer)
        if kind is TimerKind.RETRY:
            if state.steps[name].phase is Phase.BACKOFF:
                state.steps[name].phase = Phase.READY
        elif kind is TimerKind.COMPENSATION_RETRY:
            if state.steps[name].phase is Phase.COMP_BACKOFF:
                state.steps[name].phase = Phase.COMP_READY
        elif kind is TimerKind.CHILD_START:
            if name not in state.unanswered:
                state.unanswered.append(name)
        elif kind is TimerKind.SLEEP:
            self._advance(state, self.nodes[state.cursor].next)
        elif kind is TimerKind.WAIT:
            node = self.nodes[state.cursor]
            assert isinstance(node, WaitNode)
            if node.on_timeout is not None:
                self._advance(state, node.on_timeout)
            else:
                self._fail(
                    state,
                    node.name,
                    ErrorInfo(
                        "WaitTimedOut", f"no signal {sorted(node.signals)} before the timeout"
                    ),
                    None,
                )

    def _timer_started(self, state: WorkflowState, event: Event) -> None:
        if event.name is not None and event.due_ms is not None:
            state.timers[event.name] = event.due_ms
        state.entered = True

    def _wait_started(self, state: WorkflowState, event: Event) -> None:
        state.entered = True
        node = self.nodes[state.cursor]
        assert isinstance(node, WaitNode)
        for i, (name, payload) in enumerate(state.pending):
            if name in node.signals:
                del state.pending[i]
                state.signals[name] = payload
                self._advance(state, node.next)
                return
        if event.due_ms is not None:
            state.timers[timer_id(TimerKind.WAIT, node.name)] = event.due_ms

    def _signal_received(self, state: WorkflowState, event: Event) -> None:
        name = event.name or ""
        payload = event.payload if event.payload is not None else "null"
        node = self.nodes[state.cursor] if state.cursor < self.end else None
        if (
            isinstance(node, WaitNode)
            and state.entered
            and name in node.signals
            and state.error is None
            and state.cancel is None
        ):
            state.signals[name] = payload
            state.timers.pop(timer_id(TimerKind.WAIT, node.name), None)
            self._advance(state, node.next)
        else:
            state.pending.append((name, payload))

    def _branch_taken(self, state: WorkflowState, event: Event) -> None:
        node = self.nodes[state.cursor]
        assert isinstance(node, BranchNode)
        for name, index in node.targets:
            if name == event.name:
                self._advance(state, index)
                return

    def _decider_failed(self, state: WorkflowState, event: Event) -> None:
        name = event.step or ""
        error = event.error or ErrorInfo("DeciderFailed", f"{name!r} could not decide", True)
        state.entered = True
        if name in self.steps:
            state.timers.pop(timer_id(TimerKind.SCHEDULE_TO_CLOSE, name), None)
            run = state.steps.get(name)
            if run is None:
                state.steps[name] = StepRun(Phase.FAILED, event.attempt, error=error)
            else:
                run.phase = Phase.FAILED
                run.attempt = event.attempt
                run.error = error
        self._fail(state, name, error, None)

    def _cancel_requested(self, state: WorkflowState, event: Event) -> None:
        if not can_cancel(state):
            return
        state.cancel = cancel_reason(event)
        self._abandon(state)

    def _comp_scheduled(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        run = state.steps[step]
        state.status = WorkflowStatus.COMPENSATING
        run.phase = Phase.COMP_SCHEDULED
        run.comp_attempt = event.attempt
        if event.due_ms is not None:
            state.timers[timer_id(TimerKind.COMPENSATION_DEADLINE, step)] = event.due_ms

    def _comp_succeeded(self, state: WorkflowState, event: Event) -> None:
        if is_live_answer(state, event):
            step = event.step or ""
            state.steps[step].phase = Phase.COMPENSATED
            state.timers.pop(timer_id(TimerKind.COMPENSATION_DEADLINE, step), None)

    def _comp_failed(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        run = state.steps.get(step)
        if event.type is EventType.STEP_TIMED_OUT:
            if (
                run is None
                or run.phase is not Phase.COMP_SCHEDULED
                or (run.comp_attempt != event.attempt)
            ):
                return
        elif not is_live_answer(state, event) or run is None:
            return
        compensation = self.steps[step].compensation
        state.timers.pop(timer_id(TimerKind.COMPENSATION_DEADLINE, step), None)
        error = event.error or timed_out_error(step, run.comp_attempt, compensation=True)
        run.error = error
        if compensation is not None and retry_compensation(
            attempt=run.comp_attempt,
            non_retryable=error.non_retryable,
            allows_attempt=compensation.retry.allows_attempt,
        ):
            run.phase = Phase.COMP_RETRY_PENDING
        else:
            run.phase = Phase.COMP_FAILED

    def _comp_retry_scheduled(self, state: WorkflowState, event: Event) -> None:
        step = event.step or ""
        run = state.steps.get(step)
        if run is not None and run.phase is Phase.COMP_RETRY_PENDING and event.due_ms is not None:
            run.phase = Phase.COMP_BACKOFF
            state.timers[timer_id(TimerKind.COMPENSATION_RETRY, step)] = event.due_ms

    def _ended(self, state: WorkflowState, event: Event) -> None:
        state.status = _FINAL_STATUS[event.type]
        state.timers.clear()
        if event.type is EventType.COMPLETED:
            state.result = event.payload
        if event.error is not None:
            state.error = event.error
        if event.step is not None:
            state.failed_step = event.step
        if event.type is EventType.FAILED and event.name is not None:
            state.failed_compensation = event.name

    def _signal_rejected(self, state: WorkflowState, event: Event) -> None:
        why = event.error.message if event.error is not None else "rejected"
        state.last_rejection = f"signal {event.name!r}: {why}"

    def _continued(self, state: WorkflowState, event: Event) -> None:
        """Begin the next run in place: a fresh state under the same workflow id, keeping
        the parent, the signals no wait has taken yet and the search attributes steps set.

        The attributes carry over as a workflow's labels, not a run's (as in Temporal):
        a subscription a step marked ``plan=gold`` is still found by it in its next
        period, until a step of a later run sets it anew. Those read from the input are
        read from the new input.
        """
        fresh = WorkflowState(
            workflow_id=state.workflow_id,
            saga=state.saga,
            version=state.version,
            status=WorkflowStatus.RUNNING,
            started_ms=event.time_ms,
            updated_ms=event.time_ms,
            input=event.payload or "{}",
            parent=state.parent,
            pending=list(state.pending),
            run_id=event.event_id,
            previous_run_id=state.run_id or None,
            search_attributes=dict(state.search_attributes),
        )
        for f in _STATE_ATTRIBUTES:
            setattr(state, f, getattr(fresh, f))

    def _update_completed(self, state: WorkflowState, event: Event) -> None:
        update_id = event.cause or ""
        if update_id in state.updates:
            return  # an answer repeated for a request sent twice
        outcome = json.loads(event.payload or "{}")
        if "value" in outcome:
            state.signals[event.name or ""] = compact_json(outcome["value"])
        _remember_update(state, update_id, json.dumps({"result": outcome.get("result")}))

    def _update_rejected(self, state: WorkflowState, event: Event) -> None:
        update_id = event.cause or ""
        if update_id not in state.updates and event.error is not None:
            rejected = {"rejected": [event.error.type, event.error.message]}
            _remember_update(state, update_id, json.dumps(rejected))

    def _compensate_requested(self, state: WorkflowState, event: Event) -> None:
        if state.status is WorkflowStatus.COMPLETED and state.parent is not None:
            # Reopened to run its own compensations, latest first, as a failure would.
            state.status = WorkflowStatus.RUNNING
            state.error = ErrorInfo("CompensatedByParent", "the parent workflow compensates")
            state.undo_for = event.attempt
        elif state.undo_for and state.status.is_final:
            state.undo_for = event.attempt


NO_TRACE = frozenset({EventType.START_IGNORED, EventType.DEAD_LETTER_DISCARDED})
"""Decisions that leave the workflow as it was: a duplicate start is a no-op (its
status record, ``updated_ms`` included, stays untouched), an audit record changes nothing."""

MAX_REMEMBERED_UPDATES = 64
"""How many update outcomes a workflow keeps for requests sent again (bounded state)."""

_STATE_ATTRIBUTES = tuple(f.name for f in dataclasses.fields(WorkflowState))


def _remember_update(state: WorkflowState, update_id: str, outcome: str) -> None:
    state.updates[update_id] = outcome
    while len(state.updates) > MAX_REMEMBERED_UPDATES:
        del state.updates[next(iter(state.updates))]


def cancel_reason(event: Event) -> str:
    """The reason a cancel or terminate request gives (its error message, else its payload)."""
    if event.error is not None:
        return event.error.message
    return event.payload or ""


_IGNORED_NAME = {
    EventType.STEP_SUCCEEDED: EventType.STEP_SUCCEEDED.value,
    EventType.STEP_FAILED: EventType.STEP_FAILED.value,
    EventType.COMPENSATION_SUCCEEDED: EventType.COMPENSATION_SUCCEEDED.value,
    EventType.COMPENSATION_FAILED: EventType.COMPENSATION_FAILED.value,
    EventType.CHILD_ENDED: EventType.CHILD_ENDED.value,
    EventType.CANCEL_REQUESTED: "cancel",
}
"""Per input the processor may leave unapplied, the ``name`` of its ``answer_ignored``."""

_FINAL_STATUS = {
    EventType.COMPLETED: WorkflowStatus.COMPLETED,
    EventType.COMPENSATED: WorkflowStatus.COMPENSATED,
    EventType.FAILED: WorkflowStatus.FAILED,
    EventType.CANCELLED: WorkflowStatus.CANCELLED,
    EventType.TERMINATED: WorkflowStatus.TERMINATED,
}

_HANDLERS = {
    EventType.STEP_SCHEDULED: Fold._step_scheduled,
    EventType.CHILD_STARTED: Fold._child_started,
    EventType.STEP_SUCCEEDED: Fold._succeeded,
    EventType.CHILD_ENDED: Fold._succeeded,
    EventType.STEP_FAILED: Fold._failed,
    EventType.STEP_TIMED_OUT: Fold._failed,
    EventType.RETRY_SCHEDULED: Fold._retry_scheduled,
    EventType.TIMER_FIRED: Fold._timer_fired,
    EventType.TIMER_STARTED: Fold._timer_started,
    EventType.WAIT_STARTED: Fold._wait_started,
    EventType.SIGNAL_RECEIVED: Fold._signal_received,
    EventType.BRANCH_TAKEN: Fold._branch_taken,
    EventType.HEARTBEAT: Fold._heartbeat,
    EventType.DECIDER_FAILED: Fold._decider_failed,
    EventType.CANCEL_REQUESTED: Fold._cancel_requested,
    EventType.COMPENSATION_SCHEDULED: Fold._comp_scheduled,
    EventType.COMPENSATION_SUCCEEDED: Fold._comp_succeeded,
    EventType.COMPENSATION_FAILED: Fold._comp_failed,
    EventType.COMPENSATION_RETRY_SCHEDULED: Fold._comp_retry_scheduled,
    EventType.COMPLETED: Fold._ended,
    EventType.COMPENSATED: Fold._ended,
    EventType.FAILED: Fold._ended,
    EventType.CANCELLED: Fold._ended,
    EventType.TERMINATED: Fold._ended,
    EventType.SIGNAL_REJECTED: Fold._signal_rejected,
    EventType.CONTINUED_AS_NEW: Fold._continued,
    EventType.UPDATE_COMPLETED: Fold._update_completed,
    EventType.UPDATE_REJECTED: Fold._update_rejected,
    EventType.COMPENSATE_REQUESTED: Fold._compensate_requested,
    EventType.CHILD_RUNNING: Fold._child_running,
}
