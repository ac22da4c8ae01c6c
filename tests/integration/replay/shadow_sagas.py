"""A small saga and candidate changes of it, for shadow replay.

``reserve`` fails for good when the input says so (its workflows never reach ``charge``),
and ``charge`` fails once, retryably, when the input says so. The candidates change what
only some workflows meet: the retry pause of ``charge`` (only those that retried differ)
and an extra step between the two (only those that got past ``reserve`` differ).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind

SAGA_NAME = "shadow_order"


class Order(BaseModel):
    """An order; the flags choose what its participants do."""

    order_id: str
    refuse_reserve: bool = False
    charge_fails_once: bool = False


class ChargeUnavailableError(Exception):
    """The payment service was unavailable for a moment."""


def build(*, retry_pause_ms: int = 5, extra_step: bool = False) -> Saga[Order]:
    """The saga, with the retry pause of ``charge`` and, if asked, a step before it."""
    saga = Saga(SAGA_NAME, input=Order, version=1)

    @saga.step(timeout=timedelta(minutes=2))
    async def reserve(ctx: StepContext[Order]) -> str:
        if ctx.input.refuse_reserve:
            raise NonRetryableError("out of stock")
        return "reserved"

    @reserve.compensation()
    async def release(ctx: StepContext[Order]) -> None:
        return None

    if extra_step:

        @saga.step(timeout=timedelta(minutes=2), kind=StepKind.RETRIABLE)
        async def check_fraud(ctx: StepContext[Order]) -> str:
            return "ok"

    @saga.step(
        retry=Retry(max_attempts=3, initial_interval=timedelta(milliseconds=retry_pause_ms)),
        timeout=timedelta(minutes=2),
        kind=StepKind.RETRIABLE,
    )
    async def charge(ctx: StepContext[Order]) -> str:
        if ctx.input.charge_fails_once and ctx.attempt == 1:
            raise ChargeUnavailableError("payment service unavailable")
        return "charged"

    return saga


saga = build()
# Each candidate is a version 1 too, so the command line loads it as a one-element list
# (``MODULE:same``: exactly the versions it holds). A saga reference (``MODULE:saga``)
# stands for every version the module declares and would be refused here: four objects
# claim version 1. The recorded log is written by ``saga``, compiled in the test itself.
same = [build()]
slower_retry = [build(retry_pause_ms=500)]
extra_step = [build(extra_step=True)]
