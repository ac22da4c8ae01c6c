"""schedule_to_start, schedule_to_close and a child saga's timeout, driven event by event
through Plan.handle as the saga processor drives it, each step replayed from the log."""

import itertools
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from processors.commands import command_records
from sagas import Retry, Saga, StepContext, StepKind, WorkflowView
from sagas.engine import compile_saga
from sagas.engine.fold import CLOSE_MARK, STARTED_MARK
from sagas.engine.plan import Plan
from sagas.engine.state import Phase, WorkflowState
from sagas.errors import DefinitionError
from sagas.events import ErrorInfo, Event, EventType, Origin, WorkflowStatus

T0 = 1_000_000
MINUTE = 60_000


class In(BaseModel):
    minutes: int = 5


_ids = itertools.count(1)


def ev(type_: EventType, *, saga: str = "pay", workflow_id: str = "w1", **fields: Any) -> Event:
    origin = {
        EventType.TIMER_FIRED: Origin.PROCESSOR,
        EventType.START_REQUESTED: Origin.CLIENT,
        EventType.CANCEL_REQUESTED: Origin.CLIENT,
    }.get(type_, Origin.WORKER)
    fields.setdefault("time_ms", T0)
    return Event(
        event_id=f"e{next(_ids)}",
        workflow_id=workflow_id,
        saga=saga,
        version=1,
        type=type_,
        origin=origin,
        **fields,
    )


class Log:
    """Feeds events to a plan, keeps the log and checks that it folds to the live state."""

    def __init__(self, plan: Plan, workflow_id: str = "w1") -> None:
        self.plan = plan
        self.workflow_id = workflow_id
        self.state: WorkflowState | None = None
        self.events: list[Event] = []
        self.outbound: list[Event] = []

    def send(self, type_: EventType, now: int = T0, **fields: Any) -> list[Event]:
        event = ev(type_, saga=self.plan.name, workflow_id=self.workflow_id, time_ms=now, **fields)
        transition = self.plan.handle(self.state, event, now)
        if event.type is not EventType.TIMER_FIRED:
            self.events.append(event)
        self.events.extend(transition.decisions)
        self.state = transition.state
        self.outbound = transition.outbound
        self.last = transition
        rebuilt = self.plan.fold(self.events)
        assert rebuilt is not None
        assert rebuilt.to_bytes() == transition.state.to_bytes()
        return transition.decisions

    def fire(self, timer: str, now: int) -> list[Event]:
        assert self.state is not None
        assert timer in self.state.timers, self.state.timers
        return self.send(EventType.TIMER_FIRED, now, name=timer, due_ms=self.state.timers[timer])

    @property
    def timers(self) -> dict[str, int]:
        assert self.state is not None
        return self.state.timers


def types(events: list[Event]) -> list[EventType]:
    return [e.type for e in events]


def pay_plan(**charge: Any) -> Plan:
    saga = Saga("pay", input=In)

    @saga.step
    def reserve(ctx: StepContext[In]) -> None:
        return None

    @reserve.compensation
    def release(ctx: StepContext[In]) -> None:
        return None

    charge.setdefault("retry", Retry(max_attempts=5, initial_interval=timedelta(minutes=1)))

    @saga.step(kind=StepKind.PIVOT, **charge)
    def charge_card(ctx: StepContext[In]) -> None:
        return None

    return compile_saga(saga)


def reserved(plan: Plan) -> Log:
    log = Log(plan)
    log.send(EventType.START_REQUESTED, payload='{"minutes": 5}')
    log.send(EventType.STEP_SUCCEEDED, step="reserve", attempt=1, payload="null")
    return log


def test_a_command_no_worker_starts_in_time_is_a_failed_attempt_and_is_retried() -> None:
    log = reserved(pay_plan(schedule_to_start=timedelta(minutes=2)))
    assert types(log.last.decisions) == [EventType.STEP_SCHEDULED, EventType.TIMER_STARTED]
    assert log.timers == {"ss:charge_card": T0 + 2 * MINUTE}
    [(_, command)] = command_records(log.last, "pay.events")
    assert command.start_deadline_ms == T0 + 2 * MINUTE
    decisions = log.fire("ss:charge_card", T0 + 2 * MINUTE)
    assert types(decisions) == [
        EventType.TIMER_FIRED,
        EventType.STEP_TIMED_OUT,
        EventType.RETRY_SCHEDULED,
    ]
    error = decisions[1].error
    assert error is not None
    assert error.type == "ScheduleToStartTimedOut"
    assert "'charge_card' attempt 1" in error.message
    assert "0:02:00" in error.message
    assert not error.non_retryable
    # Each attempt gets its own start bound.
    decisions = log.fire("r:charge_card", T0 + 3 * MINUTE)
    assert types(decisions)[1:] == [EventType.STEP_SCHEDULED, EventType.TIMER_STARTED]
    assert log.timers == {"ss:charge_card": T0 + 5 * MINUTE}


def test_a_start_report_clears_the_bound_and_keeps_the_heartbeat_details() -> None:
    log = reserved(
        pay_plan(
            schedule_to_start=timedelta(minutes=2),
            timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
        )
    )
    charge = {"step": "charge_card", "attempt": 1}
    log.send(EventType.HEARTBEAT, T0, name=STARTED_MARK, **charge)
    log.send(EventType.HEARTBEAT, T0 + 1000, payload='{"row": 7}', **charge)
    log.send(EventType.STEP_FAILED, T0 + 2000, error=ErrorInfo("Lost", "x"), **charge)
    log.fire("r:charge_card", T0 + MINUTE + 2000)
    now = T0 + 2 * MINUTE
    log.send(EventType.HEARTBEAT, now, step="charge_card", attempt=2, name=STARTED_MARK)
    # No start bound any more, and no heartbeat deadline before the first real beat.
    assert log.timers == {"d:charge_card": T0 + 11 * MINUTE + 2000}
    assert log.state is not None
    assert log.state.heartbeats["charge_card"] == '{"row": 7}'
    log.send(EventType.STEP_SUCCEEDED, T0 + 9 * MINUTE, step="charge_card", attempt=2)
    assert log.state.status is WorkflowStatus.COMPLETED


def test_a_start_report_of_an_old_attempt_does_not_clear_the_new_one() -> None:
    log = reserved(pay_plan(schedule_to_start=timedelta(minutes=2)))
    log.fire("ss:charge_card", T0 + 2 * MINUTE)
    log.fire("r:charge_card", T0 + 3 * MINUTE)
    log.send(EventType.HEARTBEAT, T0 + 3 * MINUTE, step="charge_card", attempt=1, name="started")
    assert "ss:charge_card" in log.timers
    log.send(EventType.HEARTBEAT, T0 + 4 * MINUTE, step="charge_card", attempt=2, payload="1")
    assert "ss:charge_card" not in log.timers  # a beat also says the attempt started


def test_schedule_to_close_during_a_retry_pause_fails_the_step_for_good() -> None:
    log = reserved(pay_plan(schedule_to_close=timedelta(minutes=3), timeout=timedelta(minutes=1)))
    assert log.timers == {"d:charge_card": T0 + MINUTE, "sc:charge_card": T0 + 3 * MINUTE}
    failed = ErrorInfo("Declined", "try later")
    log.send(EventType.STEP_FAILED, T0 + 30_000, step="charge_card", attempt=1, error=failed)
    log.fire("r:charge_card", T0 + 90_000)
    assert log.timers["sc:charge_card"] == T0 + 3 * MINUTE  # one bound for all attempts
    log.send(EventType.STEP_FAILED, T0 + 2 * MINUTE, step="charge_card", attempt=2, error=failed)
    decisions = log.fire("sc:charge_card", T0 + 3 * MINUTE)
    assert types(decisions) == [
        EventType.TIMER_FIRED,
        EventType.STEP_TIMED_OUT,
        EventType.COMPENSATION_SCHEDULED,
    ]
    timed_out = decisions[1]
    assert timed_out.name == CLOSE_MARK
    assert timed_out.error is not None
    assert timed_out.error.type == "ScheduleToCloseTimedOut"
    assert timed_out.error.non_retryable
    assert "step 'charge_card'" in timed_out.error.message
    assert "schedule_to_close timeout of 0:03:00 (2 attempts)" in timed_out.error.message
    assert decisions[2].step == "reserve"
    assert log.state is not None
    assert log.state.steps["charge_card"].phase is Phase.FAILED
    assert "r:charge_card" not in log.timers
    log.send(EventType.COMPENSATION_SUCCEEDED, T0 + 4 * MINUTE, step="reserve", attempt=1)
    assert log.state.status is WorkflowStatus.COMPENSATED
    assert log.state.failed_step == "charge_card"
    assert log.state.error == timed_out.error


def test_schedule_to_close_fails_an_attempt_in_flight_and_its_late_answer_is_ignored() -> None:
    log = reserved(pay_plan(schedule_to_close=timedelta(minutes=3)))
    decisions = log.fire("sc:charge_card", T0 + 3 * MINUTE)
    assert types(decisions)[1:] == [EventType.STEP_TIMED_OUT, EventType.COMPENSATION_SCHEDULED]
    late = log.send(EventType.STEP_SUCCEEDED, T0 + 4 * MINUTE, step="charge_card", attempt=1)
    assert types(late) == [EventType.ANSWER_IGNORED]


def test_schedule_to_close_ends_with_the_step_that_succeeds_in_time() -> None:
    log = reserved(pay_plan(schedule_to_close=timedelta(minutes=3)))
    log.send(EventType.STEP_SUCCEEDED, T0 + MINUTE, step="charge_card", attempt=1)
    assert log.state is not None
    assert log.state.status is WorkflowStatus.COMPLETED
    assert log.timers == {}


def test_each_command_carries_the_earlier_of_its_timeout_and_the_close() -> None:
    log = reserved(pay_plan(schedule_to_close=timedelta(minutes=3), timeout=timedelta(minutes=2)))
    [(_, first)] = command_records(log.last, "pay.events")
    assert first.deadline_ms == T0 + 2 * MINUTE  # the attempt's own timeout comes first
    failed = ErrorInfo("Declined", "try later")
    log.send(EventType.STEP_FAILED, T0 + 10_000, step="charge_card", attempt=1, error=failed)
    log.fire("r:charge_card", T0 + 70_000)
    [(_, last)] = command_records(log.last, "pay.events")
    assert last.attempt == 2
    # Started 110 s before the close: the worker gives it up at the close, not 120 s on.
    assert log.timers["d:charge_card"] == T0 + 70_000 + 2 * MINUTE
    assert last.deadline_ms == T0 + 3 * MINUTE


def test_a_close_shorter_than_the_timeout_caps_the_attempt() -> None:
    log = reserved(pay_plan(schedule_to_close=timedelta(seconds=10), timeout=timedelta(seconds=30)))
    [(_, command)] = command_records(log.last, "pay.events")
    assert command.deadline_ms == T0 + 10_000
    decisions = log.fire("sc:charge_card", T0 + 10_000)
    assert types(decisions)[1:] == [EventType.STEP_TIMED_OUT, EventType.COMPENSATION_SCHEDULED]
    # The worker's own timed-out answer, at the same moment, changes nothing.
    late = log.send(
        EventType.STEP_FAILED,
        T0 + 10_000,
        step="charge_card",
        attempt=1,
        error=ErrorInfo("StepTimedOut", "the action passed its deadline"),
    )
    assert types(late) == [EventType.ANSWER_IGNORED]


def test_the_worker_giving_up_at_the_close_before_its_timer_fires_is_the_close() -> None:
    log = reserved(pay_plan(schedule_to_close=timedelta(seconds=10), timeout=timedelta(seconds=30)))
    cut = ErrorInfo("StepTimedOut", "the action passed its deadline")
    early = log.send(EventType.STEP_FAILED, T0 + 9_000, step="charge_card", attempt=1, error=cut)
    assert types(early) == [EventType.RETRY_SCHEDULED]  # before the close: an attempt failed
    log.fire("r:charge_card", T0 + 9_500)
    decisions = log.send(
        EventType.STEP_FAILED, T0 + 10_000, step="charge_card", attempt=2, error=cut
    )
    assert types(decisions) == [
        EventType.STEP_TIMED_OUT,
        EventType.ANSWER_IGNORED,
        EventType.COMPENSATION_SCHEDULED,
    ]
    assert decisions[0].name == CLOSE_MARK
    assert log.state is not None
    assert log.state.error is not None
    assert log.state.error.type == "ScheduleToCloseTimedOut"
    assert "sc:charge_card" not in log.timers
    # The close's own timer, when it comes, finds nothing left to do.
    assert log.send(EventType.TIMER_FIRED, T0 + 10_050, name="sc:charge_card") == []


def test_a_compensation_command_keeps_its_own_deadline() -> None:
    log = reserved(pay_plan(schedule_to_close=timedelta(minutes=3)))
    log.fire("sc:charge_card", T0 + 3 * MINUTE)
    [(_, undo)] = command_records(log.last, "pay.events")
    assert (undo.step, undo.kind.value, undo.deadline_ms) == ("reserve", "compensate", None)


def test_schedule_to_close_computed_from_the_workflow_is_recorded_once() -> None:
    calls: list[int] = []

    def minutes(view: WorkflowView[In]) -> timedelta:
        calls.append(view.input.minutes)
        return timedelta(minutes=view.input.minutes)

    log = reserved(pay_plan(schedule_to_close=minutes))
    assert log.timers["sc:charge_card"] == T0 + 5 * MINUTE
    log.send(EventType.STEP_FAILED, T0, step="charge_card", attempt=1, error=ErrorInfo("X", "x"))
    log.fire("r:charge_card", T0 + MINUTE)
    assert calls == [5]  # the second attempt keeps the bound the first recorded


def test_a_schedule_bound_that_cannot_be_had_fails_the_step_before_any_command() -> None:
    def broken(view: WorkflowView[In]) -> timedelta:
        raise RuntimeError("no minutes")

    log = reserved(pay_plan(schedule_to_start=broken))
    assert types(log.last.decisions) == [EventType.DECIDER_FAILED, EventType.COMPENSATION_SCHEDULED]
    assert command_records(log.last, "pay.events")[0][1].step == "reserve"


class Sub(BaseModel):
    n: int = 1


def child_plans(timeout: Any) -> tuple[Plan, Plan]:
    child = Saga("sub", input=Sub)

    @child.step
    def book(ctx: StepContext[Sub]) -> None:
        return None

    @book.compensation
    def unbook(ctx: StepContext[Sub]) -> None:
        return None

    parent = Saga("trip", input=In)
    parent.child("sub_trip", saga=child, input=lambda view: Sub(), timeout=timeout)
    return compile_saga(parent), compile_saga(child)


def test_a_child_past_its_timeout_fails_the_step_and_is_cancelled() -> None:
    parent, _ = child_plans(timedelta(hours=1))
    log = Log(parent)
    decisions = log.send(EventType.START_REQUESTED, payload="{}")
    assert types(decisions)[1:] == [EventType.CHILD_STARTED, EventType.TIMER_STARTED]
    assert log.timers["d:sub_trip"] == T0 + 60 * MINUTE
    decisions = log.fire("d:sub_trip", T0 + 60 * MINUTE)
    # Nothing before the child to undo: the parent ends compensated.
    assert types(decisions) == [
        EventType.TIMER_FIRED,
        EventType.STEP_TIMED_OUT,
        EventType.COMPENSATED,
    ]
    error = decisions[1].error
    assert error is not None
    assert error.type == "ChildTimedOut"
    assert error.non_retryable
    assert "child saga 'sub' of step 'sub_trip'" in error.message
    assert "1:00:00" in error.message
    [cancel] = log.outbound
    assert (cancel.type, cancel.saga, cancel.workflow_id) == (
        EventType.CANCEL_REQUESTED,
        "sub",
        "w1/sub_trip",
    )
    ended = log.send(
        EventType.CHILD_ENDED, T0 + 61 * MINUTE, step="sub_trip", attempt=1, name="CANCELLED"
    )
    assert types(ended) == [EventType.ANSWER_IGNORED]
    assert log.outbound == []


def test_a_child_that_completes_after_its_timeout_is_asked_to_undo_itself() -> None:
    parent, child = child_plans(lambda view: timedelta(minutes=view.input.minutes))
    log = Log(parent)
    log.send(EventType.START_REQUESTED, payload='{"minutes": 2}')
    log.fire("d:sub_trip", T0 + 2 * MINUTE)
    late = log.send(
        EventType.CHILD_ENDED, T0 + 3 * MINUTE, step="sub_trip", attempt=1, name="COMPLETED"
    )
    assert types(late) == [EventType.ANSWER_IGNORED]
    [undo] = log.outbound
    assert (undo.type, undo.workflow_id, undo.step) == (
        EventType.COMPENSATE_REQUESTED,
        "w1/sub_trip",
        "sub_trip",
    )
    # The completed child takes it: it reopens and compensates its own steps.
    sub = Log(child, workflow_id="w1/sub_trip")
    sub.send(EventType.START_REQUESTED, payload="{}", parent="trip/w1/sub_trip")
    sub.send(EventType.STEP_SUCCEEDED, step="book", attempt=1, payload="null")
    assert sub.state is not None
    assert sub.state.status is WorkflowStatus.COMPLETED
    decisions = sub.send(EventType.COMPENSATE_REQUESTED, step="sub_trip", attempt=undo.attempt)
    assert types(decisions) == [EventType.COMPENSATION_SCHEDULED]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule_to_start": timedelta(0)}, "schedule_to_start must be positive"),
        ({"schedule_to_close": timedelta(seconds=-1)}, "schedule_to_close must be positive"),
        ({"schedule_to_close": timedelta(days=4000)}, "schedule_to_close must be at most"),
        ({"schedule_to_start": 30}, "schedule_to_start must be a datetime.timedelta"),
        (
            {"schedule_to_start": timedelta(minutes=5), "schedule_to_close": timedelta(minutes=4)},
            r"schedule_to_start \(0:05:00\) is longer than schedule_to_close",
        ),
    ],
)
def test_schedule_bounds_are_checked_when_the_saga_compiles(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message) as caught:
        pay_plan(**options)
    assert (caught.value.saga, caught.value.step) == ("pay", "charge_card")


def test_a_child_timeout_is_checked_and_a_child_takes_no_schedule_bounds() -> None:
    with pytest.raises(DefinitionError, match="timeout must be positive") as caught:
        child_plans(timedelta(0))
    assert (caught.value.saga, caught.value.step) == ("trip", "sub_trip")
    child = Saga("sub2", input=Sub)

    @child.step(kind=StepKind.PIVOT)
    def only(ctx: StepContext[Sub]) -> None:
        return None

    parent = Saga("trip2", input=In)
    step = parent.child("sub_trip", saga=child, input=lambda view: Sub())
    step.schedule_to_close = timedelta(minutes=1)
    with pytest.raises(DefinitionError, match="give the child saga as a whole a timeout="):
        compile_saga(parent)


def test_a_retry_whose_start_bound_cannot_be_had_leaves_no_close_timer_behind() -> None:
    calls: list[int] = []

    def once(view: WorkflowView[In]) -> timedelta:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("no second bound")
        return timedelta(minutes=2)

    log = reserved(pay_plan(schedule_to_start=once, schedule_to_close=timedelta(minutes=30)))
    log.fire("ss:charge_card", T0 + 2 * MINUTE)
    decisions = log.fire("r:charge_card", T0 + 3 * MINUTE)
    assert types(decisions)[1:] == [EventType.DECIDER_FAILED, EventType.COMPENSATION_SCHEDULED]
    assert log.timers == {}  # nothing left to fire while the compensation runs
