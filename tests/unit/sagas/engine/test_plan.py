"""Plan.handle driven by hand, event by event, as the saga processor drives it."""

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from processors.commands import command_records
from sagas import Retry, Saga, StepContext, StepKind, UnapplicableEventError
from sagas.engine import compile_saga
from sagas.engine.plan import Plan
from sagas.engine.state import WorkflowState
from sagas.errors import SerializationError
from sagas.events import (
    CommandKind,
    ErrorInfo,
    Event,
    EventType,
    Origin,
    WorkflowStatus,
)


class In(BaseModel):
    amount: int


class Out(BaseModel):
    ref: str


def make_plan() -> Plan:
    saga = Saga("pay", input=In)

    @saga.step(
        retry=Retry(
            max_attempts=3,
            initial_interval=timedelta(seconds=2),
            non_retryable_errors=("CardDeclined",),
        ),
        timeout=timedelta(seconds=10),
        queue="payments",
    )
    def charge(ctx: StepContext[In]) -> Out:
        return Out(ref="c")

    @charge.compensation(retry=Retry(max_attempts=2))
    def refund(ctx: StepContext[In]) -> None:
        return None

    @saga.step(kind=StepKind.PIVOT)
    def ship(ctx: StepContext[In]) -> Out:
        return Out(ref="s")

    return compile_saga(saga)


T0 = 1_000_000


def ev(type_: EventType, *, t: int = T0, n: list[int] = [0], **fields: Any) -> Event:  # noqa: B006
    n[0] += 1
    origin = (
        Origin.PROCESSOR
        if type_ is EventType.TIMER_FIRED
        else (
            Origin.CLIENT
            if type_
            in (
                EventType.START_REQUESTED,
                EventType.SIGNAL,
                EventType.CANCEL_REQUESTED,
                EventType.TERMINATE_REQUESTED,
            )
            else Origin.WORKER
        )
    )
    return Event(
        event_id=f"e{n[0]}",
        workflow_id="w1",
        saga="pay",
        version=1,
        type=type_,
        origin=origin,
        time_ms=t,
        **fields,
    )


class Log:
    """Feeds events to a plan and keeps the log, as the processor would."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.state: WorkflowState | None = None
        self.events: list[Event] = []

    def send(self, event: Event, now: int = T0) -> list[Event]:
        transition = self.plan.handle(self.state, event, now)
        if event.type is not EventType.TIMER_FIRED:
            self.events.append(event)
        self.events.extend(transition.decisions)
        self.state = transition.state
        rebuilt = self.plan.fold(self.events)
        assert rebuilt is not None
        assert rebuilt.to_bytes() == transition.state.to_bytes()
        self.last = transition
        return transition.decisions


def started() -> Log:
    log = Log(make_plan())
    log.send(ev(EventType.START_REQUESTED, payload='{"amount": 5}'))
    return log


def types(events: list[Event]) -> list[EventType]:
    return [e.type for e in events]


def test_start_schedules_the_first_step_with_its_deadline_and_command() -> None:
    log = started()
    assert types(log.events) == [
        EventType.START_REQUESTED,
        EventType.STARTED,
        EventType.STEP_SCHEDULED,
    ]
    scheduled = log.events[-1]
    assert (scheduled.step, scheduled.attempt, scheduled.due_ms) == ("charge", 1, T0 + 10_000)
    [(queue, command)] = command_records(log.last, "pay.events")
    assert queue == "payments"
    assert command.kind is CommandKind.ACTION
    assert command.idempotency_key == "w1/charge/action"
    assert command.input == '{"amount": 5}'
    assert command.deadline_ms == T0 + 10_000
    assert command.reply_topic == "pay.events"
    assert log.state is not None
    assert log.state.timers == {"d:charge": T0 + 10_000}


def test_starting_an_existing_workflow_is_ignored() -> None:
    log = started()
    before = log.state
    assert types(log.send(ev(EventType.START_REQUESTED, payload='{"amount": 9}'))) == [
        EventType.START_IGNORED
    ]
    assert log.state is not None
    assert before is not None
    assert log.state.input == before.input


def test_success_moves_on_and_completion_carries_every_result() -> None:
    log = started()
    log.send(ev(EventType.STEP_SUCCEEDED, step="charge", attempt=1, payload='{"ref":"c"}'))
    [(_, command)] = command_records(log.last, "pay.events")
    assert command.results == '{"charge":{"ref":"c"}}'
    decisions = log.send(
        ev(EventType.STEP_SUCCEEDED, step="ship", attempt=1, payload='{"ref":"s"}')
    )
    assert types(decisions) == [EventType.COMPLETED]
    assert json.loads(decisions[0].payload or "") == {"charge": {"ref": "c"}, "ship": {"ref": "s"}}
    assert log.state is not None
    assert log.state.status is WorkflowStatus.COMPLETED
    assert log.state.status_record().result == decisions[0].payload


def test_retry_after_backoff_then_a_late_answer_to_the_old_attempt_is_ignored() -> None:
    log = started()
    failed = ev(EventType.STEP_FAILED, step="charge", attempt=1, error=ErrorInfo("Boom", "x"))
    decisions = log.send(failed, now=T0 + 100)
    assert types(decisions) == [EventType.RETRY_SCHEDULED]
    assert decisions[0].due_ms == T0 + 100 + 2_000
    assert log.state is not None
    assert "d:charge" not in log.state.timers
    fired = ev(EventType.TIMER_FIRED, name="r:charge")
    decisions = log.send(fired, now=T0 + 2_100)
    assert types(decisions) == [EventType.TIMER_FIRED, EventType.STEP_SCHEDULED]
    assert decisions[1].attempt == 2
    late = ev(EventType.STEP_SUCCEEDED, step="charge", attempt=1, payload="{}")
    assert types(log.send(late)) == [EventType.ANSWER_IGNORED]
    duplicate = ev(EventType.STEP_SUCCEEDED, step="charge", attempt=2, payload='{"ref":"c"}')
    log.send(duplicate)
    assert types(log.send(duplicate)) == [EventType.ANSWER_IGNORED]


def test_a_timeout_is_a_failed_attempt_and_a_stale_timer_does_nothing() -> None:
    log = started()
    decisions = log.send(ev(EventType.TIMER_FIRED, name="d:charge"), now=T0 + 10_000)
    assert types(decisions) == [
        EventType.TIMER_FIRED,
        EventType.STEP_TIMED_OUT,
        EventType.RETRY_SCHEDULED,
    ]
    assert log.send(ev(EventType.TIMER_FIRED, name="d:charge")) == []


def test_a_non_retryable_error_by_name_fails_at_once_with_nothing_to_undo() -> None:
    log = started()
    error = ErrorInfo("CardDeclined", "declined")
    decisions = log.send(ev(EventType.STEP_FAILED, step="charge", attempt=1, error=error))
    assert types(decisions) == [EventType.COMPENSATED]
    assert log.state is not None
    assert (log.state.failed_step, log.state.error) == ("charge", error)


def test_a_failing_pivot_compensates_and_a_failing_compensation_retries_then_fails() -> None:
    log = started()
    log.send(ev(EventType.STEP_SUCCEEDED, step="charge", attempt=1, payload='{"ref":"c"}'))
    error = ErrorInfo("Boom", "no", non_retryable=True)
    decisions = log.send(ev(EventType.STEP_FAILED, step="ship", attempt=1, error=error))
    assert types(decisions) == [EventType.COMPENSATION_SCHEDULED]
    [(_, command)] = command_records(log.last, "pay.events")
    assert command.kind is CommandKind.COMPENSATE
    assert command.idempotency_key == "w1/charge/compensate"
    assert log.state is not None
    assert log.state.status is WorkflowStatus.COMPENSATING
    broken = ErrorInfo("Down", "refund service down")
    decisions = log.send(ev(EventType.COMPENSATION_FAILED, step="charge", attempt=1, error=broken))
    assert types(decisions) == [EventType.COMPENSATION_RETRY_SCHEDULED]
    log.send(ev(EventType.TIMER_FIRED, name="cr:charge"))
    decisions = log.send(ev(EventType.COMPENSATION_FAILED, step="charge", attempt=2, error=broken))
    assert types(decisions) == [EventType.FAILED]
    # The status names both: the step whose failure started it, and the compensation.
    assert (decisions[0].step, decisions[0].name, decisions[0].error) == ("ship", "charge", broken)
    assert log.state is not None
    assert (log.state.failed_step, log.state.failed_compensation) == ("ship", "charge")


def test_cancel_waits_for_the_step_in_flight_then_compensates_it() -> None:
    log = started()
    assert log.send(ev(EventType.CANCEL_REQUESTED, error=ErrorInfo("C", "asked"))) == []
    decisions = log.send(ev(EventType.STEP_SUCCEEDED, step="charge", attempt=1, payload="{}"))
    assert types(decisions) == [EventType.COMPENSATION_SCHEDULED]
    decisions = log.send(ev(EventType.COMPENSATION_SUCCEEDED, step="charge", attempt=1))
    assert types(decisions) == [EventType.CANCELLED]
    assert log.state is not None
    assert log.state.status is WorkflowStatus.CANCELLED


def test_cancel_after_the_pivot_is_refused_and_terminate_stops_at_once() -> None:
    log = started()
    log.send(ev(EventType.STEP_SUCCEEDED, step="charge", attempt=1, payload="{}"))
    log.send(ev(EventType.CANCEL_REQUESTED))
    decisions = log.send(ev(EventType.STEP_SUCCEEDED, step="ship", attempt=1, payload="{}"))
    assert types(decisions) == [EventType.ANSWER_IGNORED, EventType.COMPLETED]
    assert decisions[0].name == "cancel"
    log2 = started()
    decisions = log2.send(ev(EventType.TERMINATE_REQUESTED, error=ErrorInfo("T", "fraud")))
    assert types(decisions) == [EventType.TERMINATED]
    assert log2.state is not None
    assert log2.state.timers == {}
    assert log2.state.error == ErrorInfo("Terminated", "fraud", non_retryable=True)
    late = ev(EventType.STEP_SUCCEEDED, step="charge", attempt=1, payload="{}")
    assert types(log2.send(late)) == [EventType.ANSWER_IGNORED]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (ev(EventType.STEP_SUCCEEDED, step="nope", attempt=1), "unknown step 'nope'"),
        (ev(EventType.STEP_SUCCEEDED, step="charge", attempt=1, payload="{bad"), "not valid JSON"),
        (ev(EventType.STARTED), "not an input event"),
    ],
)
def test_events_that_cannot_apply_are_refused(event: Event, message: str) -> None:
    log = started()
    with pytest.raises(UnapplicableEventError, match=message):
        log.plan.handle(log.state, event, T0)


def test_events_for_a_missing_workflow_are_refused() -> None:
    plan = make_plan()
    with pytest.raises(UnapplicableEventError, match="no workflow with this id"):
        plan.handle(None, ev(EventType.SIGNAL, name="x"), T0)
    with pytest.raises(UnapplicableEventError, match="not valid JSON"):
        plan.handle(None, ev(EventType.START_REQUESTED, payload="{"), T0)


def test_handle_leaves_the_given_state_untouched() -> None:
    log = started()
    before = log.state
    assert before is not None
    snapshot = before.to_bytes()
    log.send(ev(EventType.STEP_FAILED, step="charge", attempt=1, error=ErrorInfo("B", "b")))
    assert before.to_bytes() == snapshot


def test_state_bytes_round_trip_and_bad_bytes_are_refused() -> None:
    log = started()
    log.send(ev(EventType.STEP_FAILED, step="charge", attempt=1, error=ErrorInfo("B", "b")))
    assert log.state is not None
    data = log.state.to_bytes()
    assert WorkflowState.from_bytes(data) == log.state
    with pytest.raises(SerializationError):
        WorkflowState.from_bytes(b"[99]")
    with pytest.raises(SerializationError):
        WorkflowState.from_bytes(b"not json")


def test_a_signal_the_version_does_not_declare_is_rejected_with_its_reason() -> None:
    log = started()
    decisions = log.send(ev(EventType.SIGNAL, name="nope", payload="{}"))
    assert types(decisions) == [EventType.SIGNAL_REJECTED]
    assert decisions[0].error is not None
    assert decisions[0].error.type == "UnknownSignal"
    assert "has no signal 'nope'" in decisions[0].error.message
    assert log.state is not None
    assert log.state.last_rejection is not None
    assert log.state.last_rejection.startswith("signal 'nope': ")
    assert log.state.status is WorkflowStatus.RUNNING


def test_a_start_whose_input_fails_the_model_fails_before_any_step() -> None:
    log = Log(make_plan())
    decisions = log.send(ev(EventType.START_REQUESTED, payload='{"nonsense": true}'))
    assert types(decisions) == [EventType.STARTED, EventType.FAILED]
    assert log.state is not None
    assert log.state.status is WorkflowStatus.FAILED
    assert log.state.error is not None
    assert log.state.error.type == "InvalidInput"
    assert log.state.error.non_retryable
    assert "amount" in log.state.error.message
    assert log.state.steps == {}


def test_a_duplicate_start_changes_nothing_in_the_state() -> None:
    log = started()
    before = log.state
    assert before is not None
    decisions = log.send(ev(EventType.START_REQUESTED, payload='{"amount": 9}'), now=T0 + 500)
    assert types(decisions) == [EventType.START_IGNORED]
    assert log.state is not None
    assert log.state.to_bytes() == before.to_bytes()
