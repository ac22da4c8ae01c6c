"""An order saga whose participants fail on a schedule known in advance.

charge (refund) -> reserve (release) -> ship (pivot) -> notify (retriable), like the
example order saga. Whether an attempt succeeds, fails retryably or fails for good is
a hash of (workflow id, step, kind, attempt), so a test can compute each workflow's
outcome, the attempts each step gets and the compensations that run, before running
it. Re-running an attempt after a crash gives the same answer, as a deterministic
service would. Every attempt is written to the effect ledger (:mod:`.ledger`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind
from sagas.events import CommandKind, WorkflowStatus, idempotency_key
from tests.integration.participants import ledger

SAGA_NAME = "flaky_order"
STEP_TIMEOUT = timedelta(minutes=3)
"""Long enough that no attempt times out, even while a killed worker is being replaced:
a timeout would add an attempt the prediction does not know about."""


class Outcome(StrEnum):
    """What one attempt of a participant does."""

    OK = "ok"
    RETRYABLE = "retryable"
    NON_RETRYABLE = "non_retryable"


@dataclass(frozen=True, slots=True)
class Odds:
    """How often an attempt of one step's action (or compensation) fails, and its limit."""

    non_retryable: float
    retryable: float
    max_attempts: int

    def retry(self) -> Retry:
        """The retry policy the saga declares for this step, with millisecond pauses."""
        return Retry(
            max_attempts=self.max_attempts,
            initial_interval=timedelta(milliseconds=5),
            backoff_coefficient=2.0,
            max_interval=timedelta(milliseconds=20),
        )


FORWARD = ("charge", "reserve", "ship", "notify")
"""The steps in the order they run."""
COMPENSATABLE = ("charge", "reserve")
RETRIABLE = ("notify",)
"""Steps after the pivot: their permanent failure ends the workflow FAILED, undoing nothing."""
ODDS: dict[tuple[str, CommandKind], Odds] = {
    ("charge", CommandKind.ACTION): Odds(0.03, 0.20, 3),
    ("reserve", CommandKind.ACTION): Odds(0.03, 0.20, 3),
    ("ship", CommandKind.ACTION): Odds(0.03, 0.20, 3),
    ("notify", CommandKind.ACTION): Odds(0.02, 0.30, 3),
    ("charge", CommandKind.COMPENSATE): Odds(0.04, 0.30, 3),
    ("reserve", CommandKind.COMPENSATE): Odds(0.04, 0.30, 3),
}


class FlakyError(Exception):
    """A failure that a retry may fix (a timeout of the participant, a 503)."""


class OrderInput(BaseModel):
    """An order; ``delay_ms`` slows every step down and ``hold_ms`` the charge only."""

    order_id: str
    customer_email: str
    amount_cents: int
    sku: str
    quantity: int
    delay_ms: int = 0
    hold_ms: int = 0


class Charge(BaseModel):
    """The payment taken."""

    charge_id: str
    amount_cents: int


class Reservation(BaseModel):
    """The stock held."""

    reservation_id: str
    sku: str
    quantity: int


class Shipment(BaseModel):
    """The parcel handed to the carrier."""

    tracking_number: str


def order_input(workflow_id: str, *, delay_ms: int = 0, hold_ms: int = 0) -> OrderInput:
    """The input a test starts ``workflow_id`` with; derived from the id alone."""
    n = _hash_int(workflow_id)
    return OrderInput(
        order_id=workflow_id,
        customer_email=f"customer-{n % 997}@example.com",
        amount_cents=100 + n % 9900,
        sku=f"sku-{n % 53}",
        quantity=1 + n % 4,
        delay_ms=delay_ms,
        hold_ms=hold_ms,
    )


def outcome(workflow_id: str, step: str, kind: CommandKind, attempt: int) -> Outcome:
    """What attempt number ``attempt`` of this step's action or compensation does."""
    odds = ODDS[step, kind]
    u = _hash_int(f"{workflow_id}|{step}|{kind.value}|{attempt}") / 2**64
    if u < odds.non_retryable:
        return Outcome.NON_RETRYABLE
    if u < odds.non_retryable + odds.retryable:
        return Outcome.RETRYABLE
    return Outcome.OK


saga = Saga(SAGA_NAME, input=OrderInput, version=1)


async def _attempt(ctx: StepContext[OrderInput], kind: CommandKind, effect: str) -> None:
    """Run one attempt: wait as the input asks, then fail or apply ``effect`` per schedule."""
    pause = ctx.input.delay_ms
    if kind is CommandKind.ACTION and ctx.step == "charge":
        pause += ctx.input.hold_ms
    if pause:
        await asyncio.sleep(pause / 1000)
    result = outcome(ctx.workflow_id, ctx.step, kind, ctx.attempt)
    applied = result is Outcome.OK
    ledger.append(
        ledger.Attempt(
            key=ctx.idempotency_key,
            workflow_id=ctx.workflow_id,
            step=ctx.step,
            kind=kind.value,
            attempt=ctx.attempt,
            outcome=ledger.APPLIED if applied else ledger.FAILED,
            effect=effect if applied else None,
            pid=os.getpid(),
        )
    )
    if result is Outcome.NON_RETRYABLE:
        raise NonRetryableError(f"{ctx.step} {kind.value} refused attempt {ctx.attempt}")
    if result is Outcome.RETRYABLE:
        raise FlakyError(f"{ctx.step} {kind.value} attempt {ctx.attempt} failed")


@saga.step(retry=ODDS["charge", CommandKind.ACTION].retry(), timeout=STEP_TIMEOUT, queue="payments")
async def charge(ctx: StepContext[OrderInput]) -> Charge:
    """Take the amount from the customer."""
    order = ctx.input
    await _attempt(
        ctx, CommandKind.ACTION, f"charge {order.amount_cents} cents to {order.customer_email}"
    )
    return Charge(charge_id=f"ch-{order.order_id}", amount_cents=order.amount_cents)


@charge.compensation(retry=ODDS["charge", CommandKind.COMPENSATE].retry())
async def refund(ctx: StepContext[OrderInput]) -> None:
    """Give the charged amount back."""
    taken = ctx.result_of(charge)
    await _attempt(ctx, CommandKind.COMPENSATE, f"refund {taken.amount_cents} of {taken.charge_id}")


@saga.step(
    retry=ODDS["reserve", CommandKind.ACTION].retry(), timeout=STEP_TIMEOUT, queue="warehouse"
)
async def reserve(ctx: StepContext[OrderInput]) -> Reservation:
    """Hold the stock."""
    order = ctx.input
    await _attempt(ctx, CommandKind.ACTION, f"hold {order.quantity} x {order.sku}")
    return Reservation(
        reservation_id=f"rs-{order.order_id}", sku=order.sku, quantity=order.quantity
    )


@reserve.compensation(retry=ODDS["reserve", CommandKind.COMPENSATE].retry())
async def release(ctx: StepContext[OrderInput]) -> None:
    """Put the held stock back."""
    held = ctx.result_of(reserve)
    await _attempt(ctx, CommandKind.COMPENSATE, f"release {held.reservation_id}")


@saga.step(
    kind=StepKind.PIVOT,
    retry=ODDS["ship", CommandKind.ACTION].retry(),
    timeout=STEP_TIMEOUT,
    queue="warehouse",
)
async def ship(ctx: StepContext[OrderInput]) -> Shipment:
    """Hand the parcel to the carrier: the point of no return."""
    paid, held = ctx.result_of(charge), ctx.result_of(reserve)
    await _attempt(
        ctx, CommandKind.ACTION, f"ship {held.sku} with {paid.charge_id} and {held.reservation_id}"
    )
    return Shipment(tracking_number=f"TRK-{ctx.input.order_id}")


@saga.step(
    kind=StepKind.RETRIABLE, retry=ODDS["notify", CommandKind.ACTION].retry(), timeout=STEP_TIMEOUT
)
async def notify(ctx: StepContext[OrderInput]) -> None:
    """Mail the tracking number to the customer."""
    parcel = ctx.result_of(ship)
    await _attempt(
        ctx, CommandKind.ACTION, f"mail {ctx.input.customer_email}: {parcel.tracking_number}"
    )


@dataclass
class Expected:
    """What one workflow must end as, computed from the failure schedule alone."""

    workflow_id: str
    status: WorkflowStatus = WorkflowStatus.COMPLETED
    failed_step: str | None = None
    """The step whose failure ended the forward path."""
    failed_compensation: str | None = None
    """The compensation that could not be done, when one failed for good."""
    schedule: list[tuple[CommandKind, str, int]] = field(default_factory=list)
    """Every attempt the saga must schedule, in order: (kind, step, attempt)."""
    attempts: dict[str, int] = field(default_factory=dict)
    """Per idempotency key, how many attempts it gets."""
    applied: dict[str, str] = field(default_factory=dict)
    """Per idempotency key that must take effect, the effect."""
    compensated: list[str] = field(default_factory=list)
    """The steps whose compensation succeeds, in the order they must run."""


def predict(workflow_id: str) -> Expected:
    """The outcome of ``workflow_id`` under the failure schedule (the saga's semantics)."""
    expected = Expected(workflow_id)
    effects = _effects(order_input(workflow_id))
    completed: list[str] = []
    for step in FORWARD:
        if _runs(expected, step, CommandKind.ACTION, effects):
            completed.append(step)
            continue
        expected.failed_step = step
        if step in RETRIABLE:
            expected.status = WorkflowStatus.FAILED
            return expected
        for done in reversed([s for s in completed if s in COMPENSATABLE]):
            if not _runs(expected, done, CommandKind.COMPENSATE, effects):
                expected.status = WorkflowStatus.FAILED
                expected.failed_compensation = done
                return expected
            expected.compensated.append(done)
        expected.status = WorkflowStatus.COMPENSATED
        return expected
    return expected


def _runs(
    expected: Expected, step: str, kind: CommandKind, effects: dict[tuple[str, CommandKind], str]
) -> bool:
    key = idempotency_key(expected.workflow_id, step, kind)
    for attempt in range(1, ODDS[step, kind].max_attempts + 1):
        expected.schedule.append((kind, step, attempt))
        expected.attempts[key] = attempt
        result = outcome(expected.workflow_id, step, kind, attempt)
        if result is Outcome.OK:
            expected.applied[key] = effects[step, kind]
            return True
        if result is Outcome.NON_RETRYABLE:
            return False
    return False


def _effects(order: OrderInput) -> dict[tuple[str, CommandKind], str]:
    """The effects each step and compensation of ``order`` applies when it succeeds."""
    wid = order.order_id
    return {
        ("charge", CommandKind.ACTION): f"charge {order.amount_cents} cents to "
        f"{order.customer_email}",
        ("reserve", CommandKind.ACTION): f"hold {order.quantity} x {order.sku}",
        ("ship", CommandKind.ACTION): f"ship {order.sku} with ch-{wid} and rs-{wid}",
        ("notify", CommandKind.ACTION): f"mail {order.customer_email}: TRK-{wid}",
        ("charge", CommandKind.COMPENSATE): f"refund {order.amount_cents} of ch-{wid}",
        ("reserve", CommandKind.COMPENSATE): f"release rs-{wid}",
    }


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
