"""A saga whose price step sets a search attribute, after a first attempt that fails."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext
from sagas.visibility import SearchAttribute

REFUSED_TOTAL = 999_999
"""What every first attempt of the price step sets before it fails: never listed."""


class Order(BaseModel):
    customer_id: str
    quantity: int


saga = Saga(
    "vis-priced",
    input=Order,
    search_attributes=[
        SearchAttribute("customer_id", str, lambda order: order.customer_id),
        SearchAttribute("order_total", int),
    ],
)


@saga.step(retry=Retry(max_attempts=3, initial_interval=timedelta(milliseconds=100)))
def price(ctx: StepContext[Order]) -> int:
    if ctx.attempt == 1:
        ctx.set_search_attribute("order_total", REFUSED_TOTAL)
        raise ConnectionError("pricing service unavailable")
    total = ctx.input.quantity * 10
    ctx.set_search_attribute("order_total", total)
    return total


@price.compensation
def unprice(ctx: StepContext[Order]) -> None:
    return None
