"""Two deployed versions of one saga: version 2's charge step returns a different result."""

from __future__ import annotations

from pydantic import BaseModel

from sagas import Saga, StepContext, StepKind


class Order(BaseModel):
    """What starting the saga needs."""

    order_id: str
    amount_cents: int


class ChargeV1(BaseModel):
    """The charge step's result in version 1."""

    charge_id: str


class ChargeV2(BaseModel):
    """The charge step's result in version 2: a field a version 1 reader never had."""

    charge_id: str
    captured: bool


v1 = Saga("billing", input=Order, version=1)
v2 = Saga("billing", input=Order, version=2)


@v1.step(kind=StepKind.PIVOT, queue="payments")
def charge(ctx: StepContext[Order]) -> ChargeV1:
    raise NotImplementedError("served by the payments service")


@v2.step(name="charge", kind=StepKind.PIVOT, queue="payments")
def charge_v2(ctx: StepContext[Order]) -> ChargeV2:
    raise NotImplementedError("served by the payments service")


versions = [v1, v2]
