from examples.trip_saga import BOOKINGS, TripInput, saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment, assert_failure_matrix

TRIP = TripInput(trip_id="t-1", traveller="ann", origin="LIS", destination="OSL", nights=3)


def test_a_trip_books_all_three_in_parallel() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(TRIP, workflow_id="trip-ok")
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        scheduled = [e.step for e in env.history(wf) if e.type is EventType.STEP_SCHEDULED]
        assert scheduled[1:4] == ["book_flight", "book_hotel", "book_car"]
    assert BOOKINGS["trip-ok/send_itinerary/action"] == "mailed ann"


def test_a_failing_branch_undoes_the_other_branches_then_the_itinerary() -> None:
    with SagaTestEnvironment(saga) as env:
        env.fail("book_hotel")
        wf = env.start(TRIP, workflow_id="trip-hotel-full")
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPENSATED
        compensated = env.compensated(wf)
        assert sorted(compensated[:2]) == ["book_car", "book_flight"]
        assert compensated[2:] == ["open_itinerary"]
        history = env.history(wf)
        scheduled_together = [
            e.step or "" for e in history if e.type is EventType.COMPENSATION_SCHEDULED
        ][:2]
        assert sorted(scheduled_together) == ["book_car", "book_flight"]
    assert BOOKINGS["trip-hotel-full/book_car/compensate"] == "cancelled CA-t-1"


def test_the_failure_matrix_holds() -> None:
    assert len(assert_failure_matrix(saga, TRIP)) == 18
