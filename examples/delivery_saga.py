"""An order whose shipping address can be changed until the parcel ships.

``change_address`` is an update: the client waits for its outcome. Its validator
refuses an address without a postcode; once ``ship`` (the pivot) has run, the
update is refused, so a shipped parcel never sees a new address. ``SHIPMENTS``
stands in for the carrier.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind, WorkflowView

SHIPMENTS: dict[str, str] = {}
"""Parcels handed to the carrier, by idempotency key: the address they went to."""
RESERVED: dict[str, str] = {}


class Address(BaseModel):
    """Where a parcel goes."""

    street: str
    postcode: str


class Delivery(BaseModel):
    """An order to deliver."""

    order_id: str
    address: Address


saga = Saga("delivery", input=Delivery, version=1)


@saga.step(timeout=timedelta(seconds=30))
def reserve_stock(ctx: StepContext[Delivery]) -> None:
    """Set the goods aside."""
    RESERVED[ctx.idempotency_key] = ctx.input.order_id


@reserve_stock.compensation
def release_stock(ctx: StepContext[Delivery]) -> None:
    RESERVED.pop(ctx.idempotency_key.replace("/compensate", "/action"), None)


saga.wait_for("packed", timeout=timedelta(days=2))


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=1))
def ship(ctx: StepContext[Delivery]) -> str:
    """Hand the parcel to the carrier, at the latest address."""
    address: Address = ctx.update("change_address") or ctx.input.address
    SHIPMENTS[ctx.idempotency_key] = f"{address.street}, {address.postcode}"
    return address.postcode


@saga.step(kind=StepKind.RETRIABLE, retry=Retry(max_attempts=3), timeout=timedelta(seconds=30))
def notify(ctx: StepContext[Delivery]) -> None:
    """Tell the customer the parcel is on its way."""


@saga.update("change_address", payload=Address, before=ship)
def change_address(view: WorkflowView[Delivery], address: Address) -> str:
    """The address the parcel will go to."""
    return f"{address.street}, {address.postcode}"


@change_address.validator
def has_postcode(view: WorkflowView[Delivery], address: Address) -> None:
    if not address.postcode.strip():
        raise NonRetryableError("an address needs a postcode")
