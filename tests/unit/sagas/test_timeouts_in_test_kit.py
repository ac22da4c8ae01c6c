"""schedule_to_start, schedule_to_close and a child saga's timeout in the test kit, with the
virtual clock: hours of bounds in milliseconds, the runtime's own path, replay checked."""

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind, WorkflowView
from sagas.engine import compile_saga
from sagas.engine.execution import HeartbeatSender, run_command
from sagas.engine.fold import STARTED_MARK
from sagas.engine.versions import compile_versions
from sagas.events import Command, CommandKind, Event, EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment


class Order(BaseModel):
    order_id: str = "o-1"
    hours: int = 2


def order_saga(**charge: Any) -> Saga[Order]:
    saga = Saga("orders", input=Order)

    @saga.step
    def reserve(ctx: StepContext[Order]) -> str:
        return "r"

    @reserve.compensation
    def release(ctx: StepContext[Order]) -> None:
        return None

    @saga.step(kind=StepKind.PIVOT, **charge)
    def charge_card(ctx: StepContext[Order]) -> str:
        return "c"

    return saga


def errors_of(env: SagaTestEnvironment, workflow_id: str) -> list[str]:
    return [
        e.error.type
        for e in env.history(workflow_id)
        if e.type is EventType.STEP_TIMED_OUT and e.error is not None
    ]


def test_an_attempt_no_worker_picks_up_is_retried_and_the_next_one_runs() -> None:
    saga = order_saga(
        schedule_to_start=timedelta(minutes=10),
        retry=Retry(max_attempts=3, initial_interval=timedelta(minutes=1)),
    )
    with SagaTestEnvironment(saga) as env:
        env.time_out("charge_card", attempts=[1])  # no worker takes the first command
        wf = env.start(Order())
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.advance(timedelta(minutes=10))
        assert errors_of(env, wf) == ["ScheduleToStartTimedOut"]
        env.advance(timedelta(minutes=1))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        starts = [
            e.attempt
            for e in env.history(wf)
            if e.type is EventType.HEARTBEAT and e.name == STARTED_MARK
        ]
        assert starts == [2]


def test_a_started_attempt_may_run_past_schedule_to_start() -> None:
    saga = order_saga(schedule_to_start=timedelta(seconds=1))
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Order())
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert errors_of(env, wf) == []
        assert env.states[wf].timers == {}


def test_schedule_to_start_alone_exhausts_the_retries_and_compensates() -> None:
    saga = order_saga(
        schedule_to_start=timedelta(minutes=5),
        retry=Retry(max_attempts=2, initial_interval=timedelta(minutes=1)),
    )
    with SagaTestEnvironment(saga) as env:
        env.time_out("charge_card")
        wf = env.start(Order())
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        assert status.failed_step == "charge_card"
        assert status.error is not None
        assert status.error.type == "ScheduleToStartTimedOut"
        assert env.compensated(wf) == ["reserve"]


def test_schedule_to_close_bounds_every_attempt_and_backoff_together() -> None:
    def hours(view: WorkflowView[Order]) -> timedelta:
        return timedelta(hours=view.input.hours)

    saga = order_saga(
        schedule_to_close=hours,
        timeout=timedelta(minutes=5),
        retry=Retry(
            max_attempts=100, initial_interval=timedelta(minutes=25), backoff_coefficient=1.0
        ),
    )
    with SagaTestEnvironment(saga) as env:
        env.fail("charge_card")
        wf = env.start(Order(hours=2))
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        assert status.error is not None
        assert status.error.type == "ScheduleToCloseTimedOut"
        assert "step 'charge_card'" in status.error.message
        assert "schedule_to_close" in status.error.message
        assert env.compensated(wf) == ["reserve"]
        # Attempts at 0, 25, 50, 75 and 100 minutes; the bound at two hours ends the pause.
        attempts = [
            e.attempt
            for e in env.history(wf)
            if e.type is EventType.STEP_SCHEDULED and e.step == "charge_card"
        ]
        assert attempts == [1, 2, 3, 4, 5]
        assert env.now_ms - env.history(wf)[0].time_ms == 2 * 3_600_000


class Trip(BaseModel):
    trip_id: str = "t-1"


def trip_sagas() -> tuple[Saga[Trip], Saga[Trip]]:
    hotel = Saga("hotel", input=Trip)

    @hotel.step
    def book_room(ctx: StepContext[Trip]) -> str:
        return "room"

    @book_room.compensation
    def cancel_room(ctx: StepContext[Trip]) -> None:
        return None

    hotel.wait_for("confirmed")  # never comes: the child outlives its parent's patience

    @hotel.step(kind=StepKind.PIVOT)
    def pay_hotel(ctx: StepContext[Trip]) -> None:
        return None

    trip = Saga("trip", input=Trip)

    @trip.step
    def hold_seat(ctx: StepContext[Trip]) -> str:
        return "seat"

    @hold_seat.compensation
    def release_seat(ctx: StepContext[Trip]) -> None:
        return None

    trip.child("hotel_stay", saga=hotel, input=lambda view: view.input, timeout=timedelta(hours=1))
    return trip, hotel


def test_the_last_attempt_s_deadline_is_the_close_when_that_comes_first() -> None:
    saga = Saga("exports", input=Order)

    @saga.step(
        kind=StepKind.PIVOT,
        timeout=timedelta(seconds=5),
        schedule_to_close=timedelta(seconds=10),
        retry=Retry(max_attempts=2, initial_interval=timedelta(seconds=7)),
    )
    def export(ctx: StepContext[Order]) -> str:
        if ctx.attempt == 1:
            raise RuntimeError("the export service dropped the connection")
        return "exported"

    with SagaTestEnvironment(saga) as env:
        start = env.now_ms
        wf = env.start(Order())
        env.advance(timedelta(seconds=7))  # attempt 2 starts 3 s before the close
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        deadlines = [(e.attempt, e.deadline_ms) for e in env.executions if e.step == "export"]
        # Attempt 1 ends at its own timeout; attempt 2 at the close, not 5 s after its start.
        assert deadlines == [(1, start + 5_000), (2, start + 10_000)]


def test_a_child_past_its_timeout_fails_the_parent_step_and_compensates_itself() -> None:
    trip, hotel = trip_sagas()
    with SagaTestEnvironment(trip, hotel) as env:
        wf = env.start(Trip())
        child = f"{wf}/hotel_stay"
        assert env.status(child).status is WorkflowStatus.RUNNING
        env.advance(timedelta(minutes=59))
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.advance(timedelta(minutes=1))
        parent = env.status(wf)
        assert parent.status is WorkflowStatus.COMPENSATED
        assert parent.failed_step == "hotel_stay"
        assert parent.error is not None
        assert parent.error.type == "ChildTimedOut"
        assert env.compensated(wf) == ["hold_seat"]
        assert env.status(child).status is WorkflowStatus.CANCELLED
        assert env.compensated(child) == ["book_room"]
        # The child's end reached the parent after the timeout: recorded, ignored.
        assert env.event_types(wf)[-2:] == [EventType.CHILD_ENDED, EventType.ANSWER_IGNORED]


def test_the_start_report_goes_first_and_the_first_beat_after_it_is_coalesced() -> None:
    saga = Saga("beats", input=Order)

    @saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=1))
    def work(ctx: StepContext[Order]) -> None:
        ctx.heartbeat(1)

    functions = compile_versions(saga).functions[1]
    compile_saga(saga)
    sent: list[Event] = []
    command = Command(
        "w/work/action/1", "w", "beats", 1, "work", 1, CommandKind.ACTION, "k", "beats.events",
        0, deadline_ms=60_000, input="{}", heartbeat_timeout_ms=30_000, start_deadline_ms=5_000,
    )  # fmt: skip
    sender = HeartbeatSender(command, lambda: 1_000, sent.append)
    answer = asyncio.run(run_command(functions, command, lambda: 1_000, sender))
    assert answer.type is EventType.STEP_SUCCEEDED
    assert [(e.name, e.payload) for e in sent] == [(STARTED_MARK, None)]
    assert sender.flush()  # the held beat goes out once the interval allows
    assert [e.payload for e in sent] == [None, "1"]
