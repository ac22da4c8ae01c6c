"""Folding the log gives the processor's state although the log does not hold events in the
order the processor applied them: an input's decisions are appended after whatever else
arrived meanwhile, so two answers read in one batch sit side by side before the decisions
of the first, which may end the workflow and make the processor ignore the second."""

from __future__ import annotations

from pydantic import BaseModel

from processors.commands import command_records
from sagas import Retry, Saga, StepContext, StepKind
from sagas.engine import compile_saga
from sagas.engine.execution import answer_event
from sagas.engine.plan import Plan, Transition
from sagas.engine.state import Phase, WorkflowState
from sagas.events import CommandKind, ErrorInfo, Event, EventType, Origin, WorkflowStatus


class Trip(BaseModel):
    trip_id: str


def make_plan() -> Plan:
    saga = Saga("trip", input=Trip)
    once = Retry(max_attempts=1)
    with saga.parallel("bookings"):

        @saga.step(retry=once)
        def book_flight(ctx: StepContext[Trip]) -> str:
            return "FL"

        @book_flight.compensation(retry=once)
        def cancel_flight(ctx: StepContext[Trip]) -> None:
            return None

        @saga.step(retry=once)
        def book_hotel(ctx: StepContext[Trip]) -> str:
            return "HO"

        @book_hotel.compensation(retry=once)
        def cancel_hotel(ctx: StepContext[Trip]) -> None:
            return None

    @saga.step(kind=StepKind.PIVOT, retry=once)
    def confirm(ctx: StepContext[Trip]) -> str:
        return "OK"

    return compile_saga(saga)


class Processor:
    """Drives the plan as the saga processor does, keeping the log as Kafka would hold it:
    inputs where they arrived, each batch's decisions after every input read so far."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.state: WorkflowState | None = None
        self.log: list[Event] = []
        self.now = 1_000

    def batch(self, *inputs: Event) -> list[Transition]:
        self.log.extend(inputs)
        transitions = []
        for event in inputs:
            self.now += 5
            transition = self.plan.handle(self.state, event, self.now)
            self.state = transition.state
            transitions.append(transition)
        for transition in transitions:
            self.log.extend(transition.decisions)
        return transitions

    def answer(
        self, transition: Transition, step: str, kind: CommandKind, error: ErrorInfo | None = None
    ) -> Event:
        commands = command_records(transition, "trip.events")
        command = next(c for _, c in commands if c.step == step and c.kind is kind)
        return answer_event(command, time_ms=self.now, payload='"x"', error=error)


def start(processor: Processor) -> Transition:
    request = Event(
        event_id="req",
        workflow_id="t1",
        saga="trip",
        version=1,
        type=EventType.START_REQUESTED,
        origin=Origin.CLIENT,
        time_ms=processor.now,
        payload='{"trip_id": "t1"}',
    )
    return processor.batch(request)[0]


def test_an_answer_ignored_because_the_one_before_it_ended_the_workflow_is_not_folded() -> None:
    processor = Processor(make_plan())
    started = start(processor)
    flight = processor.answer(started, "book_flight", CommandKind.ACTION)
    hotel = processor.answer(started, "book_hotel", CommandKind.ACTION)
    (after_hotel,) = processor.batch(flight, hotel)[1:]
    refused = ErrorInfo("Declined", "no", non_retryable=True)
    confirm = processor.answer(after_hotel, "confirm", CommandKind.ACTION, refused)
    (compensating,) = processor.batch(confirm)
    # Both compensations answer in one batch: the flight's fails for good, which fails
    # the workflow, so the processor ignores the hotel's answer read right after it.
    undo_flight = processor.answer(compensating, "book_flight", CommandKind.COMPENSATE, refused)
    undo_hotel = processor.answer(compensating, "book_hotel", CommandKind.COMPENSATE)
    processor.batch(undo_flight, undo_hotel)

    state = processor.state
    assert state is not None
    assert state.status is WorkflowStatus.FAILED
    assert state.steps["book_hotel"].phase is Phase.COMP_SCHEDULED
    assert processor.log.index(undo_hotel) < next(
        i for i, e in enumerate(processor.log) if e.type is EventType.FAILED
    )
    folded = processor.plan.fold(processor.log)
    assert folded is not None
    assert folded.to_bytes() == state.to_bytes()


def test_a_copy_of_an_answer_the_processor_applied_once_is_still_folded_once() -> None:
    processor = Processor(make_plan())
    started = start(processor)
    flight = processor.answer(started, "book_flight", CommandKind.ACTION)
    hotel = processor.answer(started, "book_hotel", CommandKind.ACTION)
    # A step worker ran the flight again after a crash: its answer arrives twice.
    processor.batch(flight, flight, hotel)

    state = processor.state
    assert state is not None
    assert state.steps["book_flight"].phase is Phase.SUCCEEDED
    assert sum(e.type is EventType.ANSWER_IGNORED for e in processor.log) == 1
    folded = processor.plan.fold(processor.log)
    assert folded is not None
    assert folded.to_bytes() == state.to_bytes()
