"""Subscription billing: charge every month; a charge that still fails after 3 retries
spread over 7 days cancels the subscription.

The months are declared in a loop (a saga is plain Python), so each charge is
its own step with its own idempotency key. ``PAYMENTS`` stands in for the
payment provider; ``DECLINED`` lists the months whose charge fails.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import END, ActionError, Retry, Saga, StepContext, StepKind

MONTHS = 3
PAYMENTS: dict[str, str] = {}
"""Effects applied, by idempotency key; a stand-in for the payment provider."""
DECLINED: set[tuple[str, int]] = set()
"""(subscription id, month) pairs whose charges the stand-in provider declines."""


class Subscription(BaseModel):
    """A subscription to bill."""

    subscription_id: str
    monthly_cents: int


saga = Saga("billing", input=Subscription, version=1)

# 1 day, then 2, then 4: three retries spread over 7 days.
CHARGE_RETRY = Retry(max_attempts=4, initial_interval=timedelta(days=1), backoff_coefficient=2.0)


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
def activate(ctx: StepContext[Subscription]) -> None:
    """Turn the subscription on."""
    PAYMENTS.setdefault(ctx.idempotency_key, "activated")


def _charge(month: int) -> None:
    def charge(ctx: StepContext[Subscription]) -> str:
        if (ctx.input.subscription_id, month) in DECLINED:
            raise ActionError(f"card declined for month {month}")
        PAYMENTS.setdefault(ctx.idempotency_key, f"charged {ctx.input.monthly_cents}")
        return f"invoice-{month}"

    last = month == MONTHS
    saga.step(
        name=f"charge_month_{month}",
        kind=StepKind.RETRIABLE,
        retry=CHARGE_RETRY,
        timeout=timedelta(minutes=1),
        on_failure="cancel_subscription",
        then=END if last else None,
    )(charge)
    if not last:
        saga.sleep(f"month_{month}_passes", timedelta(days=30))


for _month in range(1, MONTHS + 1):
    _charge(_month)


@saga.step(
    kind=StepKind.RETRIABLE,
    retry=Retry(max_attempts=10, initial_interval=timedelta(minutes=1)),
    timeout=timedelta(seconds=30),
)
def cancel_subscription(ctx: StepContext[Subscription]) -> None:
    """Turn the subscription off after a charge failed for good."""
    PAYMENTS.setdefault(ctx.idempotency_key, "cancelled")
