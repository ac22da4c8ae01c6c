"""Monthly billing that runs for years with a bounded state: each run bills one period,
waits for the period to pass, and continues as new with the next period's input.

A run's state holds one period only; the totals travel in the input. A ``cancel``
signal (which can come with the start, ``signal_with_start``) ends the subscription
at the next period boundary. ``INVOICES`` stands in for the billing provider.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import END, Retry, Saga, StepContext, StepKind, WorkflowView

INVOICES: dict[str, int] = {}
"""Invoices issued, by idempotency key; a stand-in for the billing provider."""

PERIOD = timedelta(days=30)


class Period(BaseModel):
    """One billing period of a subscription, with what the earlier periods billed."""

    subscription_id: str
    monthly_cents: int
    period: int = 1
    billed_cents: int = 0
    last_period: int = 12


class Cancel(BaseModel):
    """Why the subscriber cancels."""

    reason: str


def subscription_saga(period: timedelta = PERIOD) -> Saga[Period]:
    """The subscription saga with periods of ``period`` (tests on a real broker use seconds)."""
    saga = Saga("subscription", input=Period, version=1)

    @saga.step(kind=StepKind.RETRIABLE, retry=Retry(max_attempts=5), timeout=timedelta(minutes=1))
    def bill_period(ctx: StepContext[Period]) -> int:
        """Issue this period's invoice (once per period: each run has its own keys)."""
        INVOICES.setdefault(ctx.idempotency_key, ctx.input.monthly_cents)
        return ctx.input.monthly_cents

    # A cancel taken during the period ends the subscription; else the period passes.
    saga.wait_for("cancel", payload=Cancel, timeout=period, on_timeout="period_passed", then=END)

    @saga.branch(targets=("next_period", END))
    def period_passed(view: WorkflowView[Period]) -> str:
        """Continue with the next period, unless this was the last one."""
        return END if view.input.period >= view.input.last_period else "next_period"

    def next_period(view: WorkflowView[Period]) -> Period:
        billed = view.input.billed_cents + view.result_of(bill_period)
        return view.input.model_copy(
            update={"period": view.input.period + 1, "billed_cents": billed}
        )

    saga.continue_as_new("next_period", input=next_period)
    return saga


saga = subscription_saga()
