"""A small shop saga for the dashboard's tests: a step, a timer, a signal, a compensation.

``reserve`` (released on failure) -> a short cool-off sleep -> a wait for ``approve`` ->
``charge``, which fails its first attempt and then fails for good above 1000 cents, so
one workflow shows retries, a timer, a signal and a compensation. Version 2 exists so a
start for it can be dead-lettered while only version 1 is deployed.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import ActionError, NonRetryableError, Retry, Saga, StepContext, StepKind

SAGA_NAME = "dash_shop"


class Order(BaseModel):
    order_id: str
    amount_cents: int


v1 = Saga(SAGA_NAME, input=Order, version=1)
v2 = Saga(SAGA_NAME, input=Order, version=2)
unprovisioned = Saga("dash_nowhere", input=Order, version=1)
"""A saga whose topics are never created: its pages show Kafka's answer as an error."""


@v1.step(timeout=timedelta(seconds=30))
async def reserve(ctx: StepContext[Order]) -> str:
    return f"res-{ctx.input.order_id}"


@reserve.compensation
async def release(ctx: StepContext[Order]) -> None:
    return None


v1.sleep("cool_off", timedelta(milliseconds=300))
v1.wait_for("approve", timeout=timedelta(minutes=10))


@v1.step(
    kind=StepKind.PIVOT, retry=Retry(max_attempts=3, initial_interval=timedelta(milliseconds=50))
)
async def charge(ctx: StepContext[Order]) -> str:
    if ctx.attempt == 1:
        raise ActionError("payment service busy")
    if ctx.input.amount_cents > 1000:
        raise NonRetryableError("card declined")
    return f"ch-{ctx.input.order_id}"


@v2.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
async def reserve_v2(ctx: StepContext[Order]) -> str:
    return f"v2-{ctx.input.order_id}"


both = [v1, v2]


@unprovisioned.step(kind=StepKind.PIVOT)
async def anything(ctx: StepContext[Order]) -> None:
    return None
