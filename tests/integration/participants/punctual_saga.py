"""A one-step saga whose participant takes exactly as long as its input says.

The step takes ``delay_ms`` and then records its effect in the ledger. With a delay well
under the timeout, any ``step_timed_out`` in its log, or a second run of its effect, is
the processor's doing: the answer was in the log before the deadline.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind
from tests.integration.participants import ledger

SAGA_NAME = "punctual"
STEP_TIMEOUT = timedelta(seconds=4)


class Delivery(BaseModel):
    """What to deliver and how long the participant takes over it."""

    parcel: str
    delay_ms: int


saga = Saga(SAGA_NAME, input=Delivery, version=1)


@saga.step(
    kind=StepKind.RETRIABLE,
    retry=Retry(max_attempts=2, initial_interval=timedelta(milliseconds=10)),
    timeout=STEP_TIMEOUT,
    queue="couriers",
)
async def deliver(ctx: StepContext[Delivery]) -> None:
    """Hand the parcel over, after the time the input says it takes."""
    await asyncio.sleep(ctx.input.delay_ms / 1000)
    ledger.append(
        ledger.Attempt(
            key=ctx.idempotency_key,
            workflow_id=ctx.workflow_id,
            step=ctx.step,
            kind="action",
            attempt=ctx.attempt,
            outcome=ledger.APPLIED,
            effect=f"delivered {ctx.input.parcel}",
            pid=os.getpid(),
        )
    )
