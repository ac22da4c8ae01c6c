"""A bundle order that pays through a child saga and ships afterwards.

``payment`` is a saga of its own (authorize, then capture, each with its undo).
When shipping fails for good, the bundle compensates its completed ``pay`` step,
and that runs the child's own compensations, latest first: refund, then void.
``LEDGER`` stands in for the payment provider.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import NonRetryableError, Saga, StepContext, WorkflowView

LEDGER: list[str] = []
"""Payment operations in the order they ran; a stand-in for the payment provider."""
OUT_OF_STOCK: set[str] = set()


class Payment(BaseModel):
    """A payment to take."""

    order_id: str
    amount_cents: int


class Bundle(BaseModel):
    """A bundle to sell."""

    order_id: str
    amount_cents: int
    sku: str


payment = Saga("payment", input=Payment, version=1)


@payment.step(timeout=timedelta(seconds=30))
def authorize(ctx: StepContext[Payment]) -> None:
    LEDGER.append(f"authorize {ctx.input.order_id}")


@authorize.compensation
def void(ctx: StepContext[Payment]) -> None:
    LEDGER.append(f"void {ctx.input.order_id}")


@payment.step(timeout=timedelta(seconds=30))
def capture(ctx: StepContext[Payment]) -> None:
    LEDGER.append(f"capture {ctx.input.order_id}")


@capture.compensation
def refund(ctx: StepContext[Payment]) -> None:
    LEDGER.append(f"refund {ctx.input.order_id}")


saga = Saga("bundle", input=Bundle, version=1)


def _payment(view: WorkflowView[Bundle]) -> Payment:
    return Payment(order_id=view.input.order_id, amount_cents=view.input.amount_cents)


pay = saga.child("pay", saga=payment, input=_payment)


@saga.step(timeout=timedelta(seconds=30))
def ship_bundle(ctx: StepContext[Bundle]) -> None:
    if ctx.input.sku in OUT_OF_STOCK:
        raise NonRetryableError(f"{ctx.input.sku} is out of stock")
    LEDGER.append(f"ship {ctx.input.order_id}")


@ship_bundle.compensation
def unship(ctx: StepContext[Bundle]) -> None:
    LEDGER.append(f"unship {ctx.input.order_id}")
