"""A small saga with search attributes and queries: reserve, then wait for approval."""

from __future__ import annotations

from pydantic import BaseModel

from sagas import Saga, StepContext
from sagas.visibility import QueryView, SearchAttribute


class Order(BaseModel):
    customer_id: str
    total: int


saga = Saga(
    "vis-shop",
    input=Order,
    search_attributes=[
        SearchAttribute("customer_id", str, lambda order: order.customer_id),
        SearchAttribute("total", int, lambda order: order.total),
    ],
)


@saga.step
def reserve(ctx: StepContext[Order]) -> int:
    return ctx.input.total * 2


@reserve.compensation
def release(ctx: StepContext[Order]) -> None:
    return None


saga.wait_for("approve")


@saga.query
def summary(view: QueryView[Order]) -> dict[str, object]:
    return {
        "customer": view.input.customer_id,
        "reserved": view.result_of("reserve") if view.has_result("reserve") else None,
        "status": view.status,
    }


@saga.query
def broken(view: QueryView[Order]) -> object:
    raise ValueError("this query always fails")
