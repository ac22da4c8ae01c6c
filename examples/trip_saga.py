"""Trip booking: open an itinerary, book flight, hotel and car in parallel, then confirm.

If one booking fails for good, the bookings that did succeed are cancelled
together (one wave), then the itinerary is closed. Confirming the trip is the
pivot; the confirmation mail after it is only retried. ``BOOKINGS`` stands in
for the travel providers and records each effect by idempotency key.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind

BOOKINGS: dict[str, str] = {}
"""Effects applied, by idempotency key; a stand-in for the travel providers."""


class TripInput(BaseModel):
    """What starting a trip saga needs."""

    trip_id: str
    traveller: str
    origin: str
    destination: str
    nights: int


class Booking(BaseModel):
    """A confirmed reservation with one provider."""

    reference: str


class Itinerary(BaseModel):
    """The itinerary the bookings belong to."""

    itinerary_id: str


saga = Saga("trip", input=TripInput, version=1)
_BOOKING_RETRY = Retry(max_attempts=3, initial_interval=timedelta(seconds=2))


def _apply(key: str, effect: str) -> None:
    BOOKINGS.setdefault(key, effect)


@saga.step(timeout=timedelta(seconds=10))
def open_itinerary(ctx: StepContext[TripInput]) -> Itinerary:
    """Open the itinerary the bookings will hang on."""
    _apply(ctx.idempotency_key, "itinerary opened")
    return Itinerary(itinerary_id=f"it-{ctx.input.trip_id}")


@open_itinerary.compensation
def close_itinerary(ctx: StepContext[TripInput]) -> None:
    """Close the itinerary of a trip that will not happen."""
    _apply(ctx.idempotency_key, f"closed {ctx.result_of(open_itinerary).itinerary_id}")


with saga.parallel("bookings"):

    @saga.step(retry=_BOOKING_RETRY, timeout=timedelta(seconds=30), queue="flights")
    async def book_flight(ctx: StepContext[TripInput]) -> Booking:
        """Book the flight from origin to destination."""
        _apply(ctx.idempotency_key, f"flight {ctx.input.origin}-{ctx.input.destination}")
        return Booking(reference=f"FL-{ctx.input.trip_id}")

    @book_flight.compensation
    async def cancel_flight(ctx: StepContext[TripInput]) -> None:
        """Cancel the flight booking."""
        _apply(ctx.idempotency_key, f"cancelled {ctx.result_of(book_flight).reference}")

    @saga.step(retry=_BOOKING_RETRY, timeout=timedelta(seconds=30), queue="hotels")
    async def book_hotel(ctx: StepContext[TripInput]) -> Booking:
        """Book the hotel for the nights of the trip."""
        _apply(ctx.idempotency_key, f"hotel {ctx.input.nights} nights")
        return Booking(reference=f"HO-{ctx.input.trip_id}")

    @book_hotel.compensation
    async def cancel_hotel(ctx: StepContext[TripInput]) -> None:
        """Cancel the hotel booking."""
        _apply(ctx.idempotency_key, f"cancelled {ctx.result_of(book_hotel).reference}")

    @saga.step(retry=_BOOKING_RETRY, timeout=timedelta(seconds=30), queue="cars")
    async def book_car(ctx: StepContext[TripInput]) -> Booking:
        """Book a rental car at the destination."""
        _apply(ctx.idempotency_key, f"car at {ctx.input.destination}")
        return Booking(reference=f"CA-{ctx.input.trip_id}")

    @book_car.compensation
    async def cancel_car(ctx: StepContext[TripInput]) -> None:
        """Cancel the car booking."""
        _apply(ctx.idempotency_key, f"cancelled {ctx.result_of(book_car).reference}")


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
def confirm_trip(ctx: StepContext[TripInput]) -> Booking:
    """Confirm all bookings with the providers: the trip is now on."""
    _apply(ctx.idempotency_key, "trip confirmed")
    return Booking(reference=f"TRIP-{ctx.input.trip_id}")


@saga.step(
    kind=StepKind.RETRIABLE,
    retry=Retry(max_attempts=5, initial_interval=timedelta(seconds=10)),
    timeout=timedelta(seconds=30),
)
def send_itinerary(ctx: StepContext[TripInput]) -> None:
    """Mail the traveller the confirmed itinerary."""
    _apply(ctx.idempotency_key, f"mailed {ctx.input.traveller}")
