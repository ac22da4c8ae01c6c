"""The sagas the chaos run drives: a trip with a charge, a child insurance saga, parallel
bookings, a durable timer, a signal with a timeout, a pivot and a retriable step after it;
and the insurance saga the trip starts as its child (a quote, then a policy bound).

Every action and compensation fails or succeeds by a hash of (workflow, step, kind,
attempt), as :mod:`tests.integration.participants.flaky_order` does, and appends each
attempt to the effect ledger, so the verifier can count effects per idempotency key.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import timedelta

from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind, WorkflowView
from sagas.events import CommandKind
from tests.integration.participants import ledger

SAGA_NAME = "chaos_trip"
CHILD_SAGA_NAME = "chaos_insurance"
CHILD_STEP = "insure"
APPROVAL_SIGNAL = "approved"
STEP_TIMEOUT = timedelta(seconds=90)
"""Longer than any outage the nemeses cause, so no attempt times out only because a
worker was down (a timeout would be correct, just noisier to read)."""
_RETRY = Retry(
    max_attempts=3,
    initial_interval=timedelta(milliseconds=10),
    backoff_coefficient=2.0,
    max_interval=timedelta(milliseconds=40),
)
_NON_RETRYABLE = 0.03
_RETRYABLE = 0.15


class TripInput(BaseModel):
    """A trip to book; ``delay_ms`` slows every step down so the run lasts."""

    trip_id: str
    traveller: str
    nights: int
    delay_ms: int = 0


class Booking(BaseModel):
    """A confirmed reservation."""

    reference: str


class Approval(BaseModel):
    """A manager's approval of the trip."""

    approver: str


class FlakyError(Exception):
    """A failure a retry may fix."""


def trip_input(workflow_id: str, *, delay_ms: int = 0) -> TripInput:
    """The input a workflow is started with, derived from its id alone."""
    n = _hash_int(workflow_id)
    return TripInput(
        trip_id=workflow_id, traveller=f"t{n % 991}", nights=1 + n % 9, delay_ms=delay_ms
    )


def _fails(ctx: StepContext[TripInput], kind: CommandKind) -> str | None:
    u = _hash_int(f"{ctx.workflow_id}|{ctx.step}|{kind.value}|{ctx.attempt}") / 2**64
    if u < _NON_RETRYABLE:
        return "non_retryable"
    if u < _NON_RETRYABLE + _RETRYABLE:
        return "retryable"
    return None


async def _attempt(ctx: StepContext[TripInput], kind: CommandKind, effect: str) -> None:
    if ctx.input.delay_ms:
        await asyncio.sleep(ctx.input.delay_ms / 1000)
    failure = _fails(ctx, kind)
    ledger.append(
        ledger.Attempt(
            key=ctx.idempotency_key,
            workflow_id=ctx.workflow_id,
            step=ctx.step,
            kind=kind.value,
            attempt=ctx.attempt,
            outcome=ledger.FAILED if failure else ledger.APPLIED,
            effect=None if failure else effect,
            pid=os.getpid(),
        )
    )
    if failure == "non_retryable":
        raise NonRetryableError(f"{ctx.step} {kind.value} refused attempt {ctx.attempt}")
    if failure == "retryable":
        raise FlakyError(f"{ctx.step} {kind.value} attempt {ctx.attempt} failed")


insurance = Saga(CHILD_SAGA_NAME, input=TripInput, version=1)


@insurance.step(retry=_RETRY, timeout=STEP_TIMEOUT, queue="insurance")
async def quote(ctx: StepContext[TripInput]) -> Booking:
    """Get a quote for the trip's cover."""
    await _attempt(ctx, CommandKind.ACTION, f"quote {ctx.input.nights} nights")
    return Booking(reference=f"QU-{ctx.input.trip_id}")


@quote.compensation(retry=_RETRY)
async def withdraw_quote(ctx: StepContext[TripInput]) -> None:
    """Withdraw the quote."""
    await _attempt(ctx, CommandKind.COMPENSATE, f"withdraw {ctx.result_of(quote).reference}")


@insurance.step(retry=_RETRY, timeout=STEP_TIMEOUT, queue="insurance")
async def bind_policy(ctx: StepContext[TripInput]) -> Booking:
    """Bind the policy the quote offered."""
    await _attempt(ctx, CommandKind.ACTION, f"policy for {ctx.input.traveller}")
    return Booking(reference=f"PO-{ctx.input.trip_id}")


@bind_policy.compensation(retry=_RETRY)
async def cancel_policy(ctx: StepContext[TripInput]) -> None:
    """Cancel the policy."""
    await _attempt(ctx, CommandKind.COMPENSATE, f"cancel {ctx.result_of(bind_policy).reference}")


saga = Saga(SAGA_NAME, input=TripInput, version=1)


@saga.step(retry=_RETRY, timeout=STEP_TIMEOUT, queue="payments")
async def charge(ctx: StepContext[TripInput]) -> Booking:
    """Take the deposit."""
    await _attempt(ctx, CommandKind.ACTION, f"deposit for {ctx.input.traveller}")
    return Booking(reference=f"CH-{ctx.input.trip_id}")


@charge.compensation(retry=_RETRY)
async def refund(ctx: StepContext[TripInput]) -> None:
    """Give the deposit back."""
    await _attempt(ctx, CommandKind.COMPENSATE, f"refund {ctx.result_of(charge).reference}")


def _cover(view: WorkflowView[TripInput]) -> TripInput:
    return view.input


# Compensating it runs the child's own compensations, latest first.
saga.child(CHILD_STEP, saga=insurance, input=_cover)

with saga.parallel("bookings"):

    @saga.step(retry=_RETRY, timeout=STEP_TIMEOUT, queue="bookings")
    async def book_flight(ctx: StepContext[TripInput]) -> Booking:
        """Book the flight."""
        await _attempt(ctx, CommandKind.ACTION, f"flight for {ctx.input.traveller}")
        return Booking(reference=f"FL-{ctx.input.trip_id}")

    @book_flight.compensation(retry=_RETRY)
    async def cancel_flight(ctx: StepContext[TripInput]) -> None:
        """Cancel the flight."""
        await _attempt(
            ctx, CommandKind.COMPENSATE, f"cancel {ctx.result_of(book_flight).reference}"
        )

    @saga.step(retry=_RETRY, timeout=STEP_TIMEOUT, queue="bookings")
    async def book_hotel(ctx: StepContext[TripInput]) -> Booking:
        """Book the hotel."""
        await _attempt(ctx, CommandKind.ACTION, f"hotel {ctx.input.nights} nights")
        return Booking(reference=f"HO-{ctx.input.trip_id}")

    @book_hotel.compensation(retry=_RETRY)
    async def cancel_hotel(ctx: StepContext[TripInput]) -> None:
        """Cancel the hotel."""
        await _attempt(ctx, CommandKind.COMPENSATE, f"cancel {ctx.result_of(book_hotel).reference}")


saga.sleep("cool_off", timedelta(seconds=1))
saga.wait_for("approval", signal=APPROVAL_SIGNAL, payload=Approval, timeout=timedelta(seconds=3))


@saga.step(kind=StepKind.PIVOT, retry=_RETRY, timeout=STEP_TIMEOUT, queue="payments")
async def confirm(ctx: StepContext[TripInput]) -> Booking:
    """Confirm every booking: the trip is on."""
    await _attempt(ctx, CommandKind.ACTION, f"confirm {ctx.input.trip_id}")
    return Booking(reference=f"TRIP-{ctx.input.trip_id}")


@saga.step(kind=StepKind.RETRIABLE, retry=_RETRY, timeout=STEP_TIMEOUT)
async def mail_itinerary(ctx: StepContext[TripInput]) -> None:
    """Mail the itinerary."""
    await _attempt(ctx, CommandKind.ACTION, f"mail {ctx.input.traveller}")


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
