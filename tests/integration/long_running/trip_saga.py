"""Trip booking with a parallel group whose car booking fails once the others are booked.

Like ``examples/trip_saga.py``: open an itinerary, then book flight, hotel and car at
once, each on its own queue (each provider serves its own). The car booking waits until
the flight and the hotel are booked, then fails for good, so the test knows which steps
completed. ``LEDGER`` records every action and compensation, in order, with its time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind

LEDGER: list[tuple[float, str, str]] = []
"""(time, workflow id, what happened), in the order the actions ran."""


class Trip(BaseModel):
    """What starting a trip needs."""

    trip_id: str


def _record(ctx: StepContext[Trip], what: str) -> None:
    LEDGER.append((time.time(), ctx.workflow_id, what))


def _booked(workflow_id: str, step: str) -> bool:
    return any(wid == workflow_id and what == f"{step} done" for _, wid, what in LEDGER)


saga = Saga("tripper", input=Trip, version=1)
_ONCE = Retry(max_attempts=1)


@saga.step(timeout=timedelta(seconds=60))
def open_itinerary(ctx: StepContext[Trip]) -> str:
    """Open the itinerary the bookings hang on."""
    _record(ctx, "open_itinerary done")
    return f"it-{ctx.input.trip_id}"


@open_itinerary.compensation
def close_itinerary(ctx: StepContext[Trip]) -> None:
    """Close the itinerary of a trip that will not happen."""
    _record(ctx, "open_itinerary undone")


with saga.parallel("bookings"):

    @saga.step(retry=_ONCE, timeout=timedelta(seconds=60), queue="flights")
    async def book_flight(ctx: StepContext[Trip]) -> str:
        """Book the flight."""
        _record(ctx, "book_flight done")
        return f"FL-{ctx.input.trip_id}"

    @book_flight.compensation
    async def cancel_flight(ctx: StepContext[Trip]) -> None:
        """Cancel the flight."""
        await asyncio.sleep(0.2)  # a real cancellation takes a while: the wave overlaps
        _record(ctx, "book_flight undone")

    @saga.step(retry=_ONCE, timeout=timedelta(seconds=60), queue="hotels")
    async def book_hotel(ctx: StepContext[Trip]) -> str:
        """Book the hotel."""
        _record(ctx, "book_hotel done")
        return f"HO-{ctx.input.trip_id}"

    @book_hotel.compensation
    async def cancel_hotel(ctx: StepContext[Trip]) -> None:
        """Cancel the hotel."""
        await asyncio.sleep(0.2)
        _record(ctx, "book_hotel undone")

    @saga.step(retry=_ONCE, timeout=timedelta(seconds=60), queue="cars")
    async def book_car(ctx: StepContext[Trip]) -> str:
        """Fail to book a car, once the flight and the hotel are booked."""
        deadline = time.monotonic() + 30
        while not (
            _booked(ctx.workflow_id, "book_flight") and _booked(ctx.workflow_id, "book_hotel")
        ):
            if time.monotonic() > deadline:
                raise NonRetryableError("the flight and hotel were never booked")
            await asyncio.sleep(0.05)
        # An effect is recorded before its step's answer is committed (a few ms later, on
        # a busy machine more): give both answers time to reach the log first.
        await asyncio.sleep(1.0)
        _record(ctx, "book_car failed")
        raise NonRetryableError("no car available")

    @book_car.compensation
    async def cancel_car(ctx: StepContext[Trip]) -> None:
        """Cancel the car (never needed: it was not booked)."""
        _record(ctx, "book_car undone")


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=60))
def confirm_trip(ctx: StepContext[Trip]) -> None:
    """Confirm the trip."""
    _record(ctx, "confirm_trip done")
