"""The benchmark workload: a 4-step order saga whose handlers do no I/O."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind


class BenchOrder(BaseModel):
    """A minimal order."""

    order_id: str
    amount_cents: int


class Done(BaseModel):
    """A minimal step result."""

    ref: str


holding = Saga("bench_order", input=BenchOrder, version=1)
holding.sleep("hold", timedelta(days=30))
"""Version 1 only sleeps: the in-flight workflows of the scale benchmark."""

saga = Saga("bench_order", input=BenchOrder, version=2)
"""Version 2, the newest, is the 4-step workload every benchmark measures."""
_RETRY = Retry(max_attempts=3, initial_interval=timedelta(milliseconds=100))


@saga.step(retry=_RETRY, timeout=timedelta(seconds=30))
async def charge(ctx: StepContext[BenchOrder]) -> Done:
    """Charge the order."""
    return Done(ref=ctx.idempotency_key)


@charge.compensation
async def refund(ctx: StepContext[BenchOrder]) -> None:
    """Refund the order."""


@saga.step(retry=_RETRY, timeout=timedelta(seconds=30))
async def reserve(ctx: StepContext[BenchOrder]) -> Done:
    """Reserve stock."""
    return Done(ref=ctx.idempotency_key)


@reserve.compensation
async def release(ctx: StepContext[BenchOrder]) -> None:
    """Release stock."""


@saga.step(kind=StepKind.PIVOT, retry=_RETRY, timeout=timedelta(seconds=30))
async def ship(ctx: StepContext[BenchOrder]) -> Done:
    """Ship the order."""
    return Done(ref=ctx.idempotency_key)


@saga.step(kind=StepKind.RETRIABLE, retry=_RETRY, timeout=timedelta(seconds=30))
async def notify(ctx: StepContext[BenchOrder]) -> Done:
    """Notify the customer."""
    return Done(ref=ctx.idempotency_key)


versions = [holding, saga]
"""Both versions, as the benchmark's workers run them."""
