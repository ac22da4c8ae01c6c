"""schedule_to_start, schedule_to_close and a child saga's timeout on the real broker: the
saga processor fires the bounds as timers, the step worker reports the attempts it starts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from processors.metrics import PrometheusMetrics
from processors.runner import Role, WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas import Retry, Saga, StepContext, StepKind
from sagas.client.history import read_history
from sagas.engine.fold import STARTED_MARK
from sagas.engine.versions import compile_versions
from sagas.events import EventType, WorkflowStatus
from tests.integration.long_running.conftest import Runtime

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(30)]


class Order(BaseModel):
    order_id: str


RUNS: list[tuple[str, int]] = []
"""The (order, attempt) of each run of ``charge_card`` in this process's step workers."""


def _order_saga(name: str, **charge: object) -> Saga[Order]:
    saga = Saga(name, input=Order)

    @saga.step
    def reserve(ctx: StepContext[Order]) -> str:
        return "reserved"

    @reserve.compensation
    def release(ctx: StepContext[Order]) -> None:
        return None

    def charge_card(ctx: StepContext[Order]) -> str:
        RUNS.append((ctx.input.order_id, ctx.attempt))
        if ctx.input.order_id.startswith("declined"):
            raise RuntimeError("the card service is down")
        time.sleep(1.5)  # longer than schedule_to_start: only the start must come in time
        return "charged"

    saga.step(kind=StepKind.PIVOT, name="charge_card", **charge)(charge_card)  # type: ignore[call-overload]
    return saga


def test_an_attempt_no_worker_starts_fails_and_a_started_one_may_run_long(
    saga_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    saga = _order_saga(
        "bound-start",
        queue="payments",
        schedule_to_start=timedelta(seconds=1),
        retry=Retry(max_attempts=4, initial_interval=timedelta(seconds=2)),
    )
    runtime = saga_runtime(saga, start_worker=False)
    # The processor and the saga's own queue, but nobody consumes "payments" yet.
    runtime.run_worker(runtime.versions, tmp_path / "processor", queues=[saga.queue])
    wid = runtime.client.start(saga, Order(order_id="o-1"), workflow_id="bs-1")
    deadline = time.monotonic() + 10
    while not any(
        e.type is EventType.STEP_TIMED_OUT for e in read_history(runtime.kafka, saga.name, wid)
    ):
        assert time.monotonic() < deadline, "the first attempt never timed out"
        time.sleep(0.2)
    # A worker comes up: it finds the first attempt's command past its start deadline and
    # leaves it, then runs a later attempt, which outlives schedule_to_start once started.
    runtime.run_worker(
        runtime.versions, tmp_path / "payments", role=Role.STEPS, queues=["payments"]
    )
    record = runtime.client.result(saga, wid, timeout=20)
    assert record.status is WorkflowStatus.COMPLETED, record
    history = read_history(runtime.kafka, saga.name, wid)
    timed_out = [e for e in history if e.type is EventType.STEP_TIMED_OUT]
    assert timed_out[0].attempt == 1
    assert {e.error.type for e in timed_out if e.error is not None} == {"ScheduleToStartTimedOut"}
    ran = [attempt for order, attempt in RUNS if order == "o-1"]
    assert ran, "no attempt ran"
    assert 1 not in ran, ran
    reports = [
        e.attempt for e in history if e.type is EventType.HEARTBEAT and e.name == STARTED_MARK
    ]
    assert reports == ran


def test_schedule_to_close_ends_the_retries_and_compensates(
    saga_runtime: Callable[..., Runtime],
) -> None:
    saga = _order_saga(
        "bound-close",
        timeout=timedelta(seconds=1),
        schedule_to_close=timedelta(seconds=2),
        retry=Retry(
            max_attempts=100,
            initial_interval=timedelta(milliseconds=300),
            backoff_coefficient=1.0,
        ),
    )
    runtime = saga_runtime(saga)
    started = time.monotonic()
    wid = runtime.client.start(saga, Order(order_id="declined-1"), workflow_id="bc-1")
    record = runtime.client.result(saga, wid, timeout=20)
    assert time.monotonic() - started < 15
    assert record.status is WorkflowStatus.COMPENSATED, record
    assert record.error is not None
    assert record.error.type == "ScheduleToCloseTimedOut", record.error
    assert "step 'charge_card'" in record.error.message
    history = read_history(runtime.kafka, saga.name, wid)
    attempts = [
        e.attempt for e in history if e.type is EventType.STEP_SCHEDULED and e.step == "charge_card"
    ]
    assert 2 <= len(attempts) < 100  # retried, then stopped by the bound, not by max_attempts
    compensated = [e.step for e in history if e.type is EventType.COMPENSATION_SUCCEEDED]
    assert compensated == ["reserve"]


def test_the_worker_gives_the_last_attempt_up_at_the_close_not_at_its_timeout(
    saga_runtime: Callable[..., Runtime], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saga = Saga("bound-cut", input=Order)

    @saga.step(
        kind=StepKind.PIVOT,
        queue="slow",
        timeout=timedelta(seconds=30),
        schedule_to_close=timedelta(seconds=4),
        retry=Retry(max_attempts=2, initial_interval=timedelta(milliseconds=100)),
    )
    async def export(ctx: StepContext[Order]) -> str:
        if ctx.attempt == 1:
            await asyncio.sleep(1.5)
            raise RuntimeError("the export service dropped the connection")
        await asyncio.sleep(25)  # far past the close: only the close can stop it in time
        return "exported"

    runtime = saga_runtime(saga, start_worker=False)
    runtime.run_worker(runtime.versions, tmp_path / "processor", role=Role.PROCESSOR)
    registry = CollectorRegistry()
    steps = WorkerRunner(
        runtime.versions,
        runtime.kafka,
        role=Role.STEPS,
        queues=["slow"],
        processor_settings=ProcessorSettings(state_dir=tmp_path / "slow"),
        metrics=PrometheusMetrics(registry),
    ).start()
    runtime.runners.append(steps)
    steps.wait_ready()
    caplog.set_level(logging.WARNING, logger="processors.step_worker")
    wid = runtime.client.start(saga, Order(order_id="x-1"), workflow_id="cut-1")
    record = runtime.client.result(saga, wid, timeout=20)
    assert record.status is WorkflowStatus.COMPENSATED, record  # nothing before it to undo
    assert record.error is not None
    assert record.error.type == "ScheduleToCloseTimedOut", record.error
    history = read_history(runtime.kafka, saga.name, wid)
    scheduled = {e.attempt: e for e in history if e.type is EventType.STEP_SCHEDULED}
    assert sorted(scheduled) == [1, 2]
    # The worker's own answer to attempt 2, at the close, about 2.5 s after it started
    # (its 30 s timeout would have been 30 s).
    deadline = time.monotonic() + 10
    while not (cut := [e for e in history if e.type is EventType.STEP_FAILED and e.attempt == 2]):
        assert time.monotonic() < deadline, [e.type.value for e in history]
        time.sleep(0.2)
        history = read_history(runtime.kafka, saga.name, wid)
    [answer] = cut
    assert answer.error is not None
    assert answer.error.type == "StepTimedOut", answer.error
    close_ms = scheduled[1].time_ms + 4000
    assert close_ms - 200 <= answer.time_ms < close_ms + 1500
    assert answer.time_ms - scheduled[2].time_ms < 4000
    assert any(
        "abandoned action of cut-1/export attempt 2" in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    failed = registry.get_sample_value(
        "sagas_step_duration_seconds_count",
        {"saga": saga.name, "step": "export", "outcome": "failed"},
    )
    assert failed == 2


class Trip(BaseModel):
    trip_id: str


def test_a_child_past_its_timeout_fails_the_step_and_compensates_itself(
    saga_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    hotel = Saga("bound-hotel", input=Trip)

    @hotel.step
    def book_room(ctx: StepContext[Trip]) -> str:
        return "room"

    @book_room.compensation
    def cancel_room(ctx: StepContext[Trip]) -> None:
        return None

    hotel.wait_for("confirmed")  # never sent: the child runs past its parent's patience

    @hotel.step(kind=StepKind.PIVOT)
    def pay_hotel(ctx: StepContext[Trip]) -> None:
        return None

    trip = Saga("bound-trip", input=Trip)

    @trip.step
    def hold_seat(ctx: StepContext[Trip]) -> str:
        return "seat"

    @hold_seat.compensation
    def release_seat(ctx: StepContext[Trip]) -> None:
        return None

    trip.child(
        "hotel_stay", saga=hotel, input=lambda view: view.input, timeout=timedelta(seconds=2)
    )

    runtime = saga_runtime(trip)
    child_versions = compile_versions(hotel)
    provision(child_versions, runtime.kafka)
    runtime.run_worker(child_versions, tmp_path / "hotel")
    wid = runtime.client.start(trip, Trip(trip_id="t-1"), workflow_id="bt-1")
    record = runtime.client.result(trip, wid, timeout=20)
    assert record.status is WorkflowStatus.COMPENSATED, record
    assert record.failed_step == "hotel_stay"
    assert record.error is not None
    assert record.error.type == "ChildTimedOut", record.error
    # The child, whose id holds the parent's "/", cancelled by the parent: it undid its
    # own completed step.
    child = f"{wid}/hotel_stay"
    assert runtime.client.result(hotel, child, timeout=15).status is WorkflowStatus.CANCELLED
    assert runtime.client.describe(hotel, child)["status"] == "CANCELLED"
    child_history = read_history(runtime.kafka, hotel.name, child)
    types = [e.type for e in child_history]
    assert types[-1] is EventType.CANCELLED, types
    assert EventType.CANCEL_REQUESTED in types
    undone = [e.step for e in child_history if e.type is EventType.COMPENSATION_SUCCEEDED]
    assert undone == ["book_room"]
