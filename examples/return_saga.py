"""Product returns, in two versions deployed side by side.

Version 1 books the carrier's pickup (cancelled if a later step fails), refunds the
customer's card (the pivot) and mails the customer. Version 2 is derived from version 1
and states only what changed: it holds a restock slot in the warehouse after the pickup,
refunds as store credit when the customer asked for it (the refund step is replaced, and
keeps its step name), and stops mailing, because its refund service mails the customer
itself. Workflows started on version 1 finish on it; new ones start on version 2. A
worker pointed at this module (``sagas worker examples.return_saga``) serves both.

The in-memory ``LEDGER`` stands in for the carrier, warehouse, payment and mail services
and records every effect by idempotency key.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind

LEDGER: dict[str, str] = {}
"""Effects applied, by idempotency key; a stand-in for the participant services."""

FULL_WAREHOUSES = frozenset({"north"})
"""Warehouses with no restock slot left: holding one there fails for good."""


class ReturnInput(BaseModel):
    """What starting a return needs."""

    return_id: str
    customer_email: str
    amount_cents: int
    warehouse: str = "central"
    store_credit: bool = False


class Pickup(BaseModel):
    """The carrier's pickup of the returned item."""

    pickup_id: str


class Refund(BaseModel):
    """Money given back: to the card, or (version 2) as store credit."""

    refund_id: str
    amount_cents: int
    method: str = "card"


class RestockSlot(BaseModel):
    """Room held in the warehouse for the returned item."""

    slot_id: str


def _apply(key: str, effect: str) -> None:
    """Record an effect once per idempotency key, as an idempotent service would."""
    LEDGER.setdefault(key, effect)


v1 = Saga("returns", input=ReturnInput, version=1)


@v1.step(timeout=timedelta(seconds=30), queue="carrier")
async def book_pickup(ctx: StepContext[ReturnInput]) -> Pickup:
    """Ask the carrier to collect the item from the customer."""
    _apply(ctx.idempotency_key, f"pickup booked for {ctx.input.return_id}")
    return Pickup(pickup_id=f"pk-{ctx.input.return_id}")


@book_pickup.compensation
async def cancel_pickup(ctx: StepContext[ReturnInput]) -> None:
    """Call the pickup off."""
    _apply(ctx.idempotency_key, f"pickup {ctx.result_of(book_pickup).pickup_id} cancelled")


@v1.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30), queue="payments")
async def refund_payment(ctx: StepContext[ReturnInput]) -> Refund:
    """Give the amount back to the customer's card: from here on the return goes through."""
    if ctx.input.amount_cents <= 0:
        raise NonRetryableError("the amount must be positive")
    _apply(ctx.idempotency_key, f"refunded {ctx.input.amount_cents} to the card")
    return Refund(refund_id=f"rf-{ctx.input.return_id}", amount_cents=ctx.input.amount_cents)


@v1.step(
    kind=StepKind.RETRIABLE,
    retry=Retry(max_attempts=10, initial_interval=timedelta(seconds=5)),
    timeout=timedelta(seconds=30),
)
async def notify_customer(ctx: StepContext[ReturnInput]) -> None:
    """Tell the customer the refund is on its way."""
    refund = ctx.result_of(refund_payment)
    _apply(ctx.idempotency_key, f"mailed {ctx.input.customer_email} {refund.refund_id}")


v2 = v1.derive(version=2)


@v2.step(after="book_pickup", timeout=timedelta(seconds=30), queue="warehouse")
def hold_restock_slot(ctx: StepContext[ReturnInput]) -> RestockSlot:
    """Hold room for the item in its warehouse (new in version 2)."""
    if ctx.input.warehouse in FULL_WAREHOUSES:
        raise NonRetryableError(f"warehouse {ctx.input.warehouse!r} has no restock slot left")
    _apply(ctx.idempotency_key, f"slot held in {ctx.input.warehouse}")
    return RestockSlot(slot_id=f"sl-{ctx.input.return_id}")


@hold_restock_slot.compensation
def release_restock_slot(ctx: StepContext[ReturnInput]) -> None:
    """Give the held room back."""
    _apply(ctx.idempotency_key, f"slot {ctx.result_of(hold_restock_slot).slot_id} released")


@v2.step(replaces="refund_payment", kind=StepKind.PIVOT, timeout=timedelta(seconds=30),
         queue="payments")  # fmt: skip
async def refund_or_credit(ctx: StepContext[ReturnInput]) -> Refund:
    """Refund to the card, or as store credit worth a tenth more when the customer asked;
    the refund service mails the customer either way."""
    if ctx.input.amount_cents <= 0:
        raise NonRetryableError("the amount must be positive")
    if ctx.input.store_credit:
        amount = ctx.input.amount_cents * 11 // 10
        _apply(ctx.idempotency_key, f"credited {amount} and mailed {ctx.input.customer_email}")
        return Refund(refund_id=f"sc-{ctx.input.return_id}", amount_cents=amount, method="credit")
    _apply(ctx.idempotency_key, f"refunded {ctx.input.amount_cents} and mailed the customer")
    return Refund(refund_id=f"rf-{ctx.input.return_id}", amount_cents=ctx.input.amount_cents)


v2.remove("notify_customer")
