"""Order fulfillment: charge payment, reserve inventory, create the shipment, notify.

Charging and reserving are undone (refund, release) if a later step fails
before the shipment exists; creating the shipment is the pivot, after which the
notification is only retried. The in-memory ``LEDGER`` stands in for the
payment, inventory and mail services and records every effect by idempotency
key, so tests can check that each effect happened once.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind

LEDGER: dict[str, str] = {}
"""Effects applied, by idempotency key; a stand-in for the participant services."""

OUT_OF_STOCK = frozenset({"sold-out-sku"})
"""SKUs the stand-in inventory service has none of: reserving them fails for good."""


class OrderInput(BaseModel):
    """What starting an order saga needs."""

    order_id: str
    customer_email: str
    amount_cents: int
    sku: str
    quantity: int = 1


class Charge(BaseModel):
    """A payment taken for the order."""

    charge_id: str
    amount_cents: int


class Reservation(BaseModel):
    """Stock held for the order."""

    reservation_id: str
    sku: str
    quantity: int


class Shipment(BaseModel):
    """The shipment created for the order."""

    tracking_number: str


saga = Saga("order", input=OrderInput, version=1)


def _apply(key: str, effect: str) -> None:
    """Record an effect once per idempotency key, as an idempotent service would."""
    LEDGER.setdefault(key, effect)


@saga.step(
    retry=Retry(max_attempts=3, initial_interval=timedelta(seconds=1)),
    timeout=timedelta(seconds=30),
    queue="payments",
)
async def charge_payment(ctx: StepContext[OrderInput]) -> Charge:
    """Take the order's amount from the customer."""
    if ctx.input.amount_cents <= 0:
        raise NonRetryableError("the amount must be positive")
    _apply(ctx.idempotency_key, f"charged {ctx.input.amount_cents}")
    return Charge(charge_id=f"ch-{ctx.input.order_id}", amount_cents=ctx.input.amount_cents)


@charge_payment.compensation
async def refund_payment(ctx: StepContext[OrderInput]) -> None:
    """Give the charged amount back."""
    charge = ctx.result_of(charge_payment)
    _apply(ctx.idempotency_key, f"refunded {charge.charge_id}")


@saga.step(timeout=timedelta(seconds=30), queue="inventory")
def reserve_inventory(ctx: StepContext[OrderInput]) -> Reservation:
    """Hold the ordered stock (a plain function: it runs in a worker thread)."""
    if ctx.input.sku in OUT_OF_STOCK:
        raise NonRetryableError(f"{ctx.input.sku} is out of stock")
    _apply(ctx.idempotency_key, f"reserved {ctx.input.quantity} x {ctx.input.sku}")
    return Reservation(
        reservation_id=f"rs-{ctx.input.order_id}", sku=ctx.input.sku, quantity=ctx.input.quantity
    )


@reserve_inventory.compensation
def release_inventory(ctx: StepContext[OrderInput]) -> None:
    """Put the held stock back."""
    reservation = ctx.result_of(reserve_inventory)
    _apply(ctx.idempotency_key, f"released {reservation.reservation_id}")


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=1), queue="shipping")
async def create_shipment(ctx: StepContext[OrderInput]) -> Shipment:
    """Hand the order to the carrier: from here on the order goes through."""
    _apply(ctx.idempotency_key, "shipment created")
    return Shipment(tracking_number=f"TRK-{ctx.input.order_id}")


@saga.step(
    kind=StepKind.RETRIABLE,
    retry=Retry(max_attempts=10, initial_interval=timedelta(seconds=5)),
    timeout=timedelta(seconds=30),
)
async def notify_customer(ctx: StepContext[OrderInput]) -> None:
    """Tell the customer the order is on its way."""
    shipment = ctx.result_of(create_shipment)
    _apply(ctx.idempotency_key, f"mailed {ctx.input.customer_email} {shipment.tracking_number}")
