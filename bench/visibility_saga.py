"""The visibility benchmark's workload: an order saga with search attributes, two steps
whose handlers do no I/O: a compensable charge, then the pivot."""

from __future__ import annotations

from pydantic import BaseModel

from sagas import Saga, StepContext, StepKind
from sagas.visibility import QueryView, SearchAttribute


class VisOrder(BaseModel):
    """An order with the customer and total it is searched by."""

    order_id: str
    customer_id: str
    order_total: int


saga = Saga(
    "vis_order",
    input=VisOrder,
    search_attributes=[
        SearchAttribute("customer_id", str, lambda order: order.customer_id),
        SearchAttribute("order_total", int, lambda order: order.order_total),
    ],
)


@saga.step
async def charge(ctx: StepContext[VisOrder]) -> int:
    """Charge the order."""
    return ctx.input.order_total


@charge.compensation
async def refund(ctx: StepContext[VisOrder]) -> None:
    """Refund the order."""


@saga.step(kind=StepKind.PIVOT)
async def ship(ctx: StepContext[VisOrder]) -> str:
    """Ship the order."""
    return ctx.input.order_id


@saga.query
def charged(view: QueryView[VisOrder]) -> object:
    """What the order was charged, once it was."""
    return view.result_of("charge") if view.has_result("charge") else None
