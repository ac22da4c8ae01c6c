"""A one-step saga whose step is served by a participant outside Python's kafka-sagas.

``charge`` runs on the queue ``payments``; the function below only declares the step's
types (its input model and its result model), which become the step's contracts. No
kafka-sagas worker serves the queue in these tests: a participant process does.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field

from sagas import Saga, StepContext, StepKind


class PaymentInput(BaseModel):
    """What starting a payment needs."""

    order_id: str
    amount_cents: int
    currency: str = "EUR"


class Charge(BaseModel):
    """The payment service's answer."""

    charge_id: str
    amount_cents: int = Field(description="What was charged, in cents.")
    captured: bool


saga = Saga("payment", input=PaymentInput, version=1)


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=2), queue="payments")
def charge(ctx: StepContext[PaymentInput]) -> Charge:
    raise NotImplementedError("served by a participant in another language or process")
