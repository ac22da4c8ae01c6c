"""A parallel group's failing branch: the other branches' completed steps are compensated
together, then the earlier steps, as the history read from the event log shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from processors.runner import Role
from sagas.client.history import read_history
from sagas.events import Event, EventType, WorkflowStatus
from tests.integration.long_running import trip_saga
from tests.integration.long_running.conftest import Runtime

TRIPS = 3
_COMPENSATION = {
    EventType.COMPENSATION_SCHEDULED,
    EventType.COMPENSATION_SUCCEEDED,
    EventType.COMPENSATION_FAILED,
}


def _first(history: list[Event], type_: EventType, step: str) -> int:
    return next(i for i, e in enumerate(history) if e.type is type_ and e.step == step)


def test_failed_branch_compensates_the_group_then_the_earlier_steps(
    saga_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = saga_runtime(trip_saga.saga, start_worker=False)
    runtime.run_worker(runtime.versions, tmp_path / "processor", role=Role.PROCESSOR)
    # One step worker per provider, as each would run its own: the bookings really run
    # at the same time, and the car booking can wait for the other two.
    for queue in sorted(runtime.versions.queues):
        runtime.run_worker(runtime.versions, tmp_path / queue, role=Role.STEPS, queues=[queue])
    trip_saga.LEDGER.clear()
    client = runtime.client
    wids = [
        client.start(trip_saga.saga, trip_saga.Trip(trip_id=f"t{i}"), workflow_id=f"trip-{i}")
        for i in range(TRIPS)
    ]
    for wid in wids:
        record = client.result(trip_saga.saga, wid, timeout=90)
        assert record.status is WorkflowStatus.COMPENSATED, record
        assert record.failed_step == "book_car", record

        history = read_history(runtime.kafka, trip_saga.saga.name, wid)
        print(f"\n{wid}:\n" + "\n".join(f"  {e.type.value} {e.step or ''}" for e in history))
        compensations = [(e.type, e.step) for e in history if e.type in _COMPENSATION]
        assert {step for _, step in compensations} == {
            "book_flight",
            "book_hotel",
            "open_itinerary",
        }, compensations
        assert all(t is not EventType.COMPENSATION_FAILED for t, _ in compensations)
        failed = _first(history, EventType.STEP_FAILED, "book_car")
        for step in ("book_flight", "book_hotel"):
            assert _first(history, EventType.STEP_SUCCEEDED, step) < failed
        group_scheduled = [
            _first(history, EventType.COMPENSATION_SCHEDULED, s)
            for s in ("book_flight", "book_hotel")
        ]
        group_done = [
            _first(history, EventType.COMPENSATION_SUCCEEDED, s)
            for s in ("book_flight", "book_hotel")
        ]
        itinerary_scheduled = _first(history, EventType.COMPENSATION_SCHEDULED, "open_itinerary")
        # The group's completed steps are undone in one wave: both are scheduled before
        # either is done; the earlier step only after the whole wave.
        assert failed < min(group_scheduled)
        assert max(group_scheduled) < min(group_done)
        assert max(group_done) < itinerary_scheduled
        assert itinerary_scheduled < _first(
            history, EventType.COMPENSATION_SUCCEEDED, "open_itinerary"
        )
        assert history[-1].type is EventType.COMPENSATED

        effects = [what for _, w, what in trip_saga.LEDGER if w == wid]
        assert effects[-1] == "open_itinerary undone", effects
        assert sorted(effects[-3:-1]) == ["book_flight undone", "book_hotel undone"], effects
        assert "book_car undone" not in effects
        assert "confirm_trip done" not in effects
