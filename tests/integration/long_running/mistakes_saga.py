"""Sagas for the tests of mistakes a user makes: a typo in a signal, a payload or an input
that does not fit, a record that cannot be read, a compensation that cannot be done.

``claim`` submits (compensatable: withdrawn on cancel), waits up to ten minutes for
``approved`` or ``rejected`` with a :class:`Decision`, then pays (the pivot) or notifies.
``fragile`` reserves, then fails to charge, and its compensation fails for good.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from pydantic import BaseModel

from sagas import END, NonRetryableError, Retry, Saga, StepContext, StepKind, WorkflowView

EFFECTS: defaultdict[str, list[str]] = defaultdict(list)
"""What each step did, by idempotency key (the step worker runs in the test's process)."""


class Claim(BaseModel):
    """An expense claim."""

    expense_id: str
    amount_cents: int


class Decision(BaseModel):
    """The approver's answer, sent as the ``approved`` or ``rejected`` signal."""

    approver: str


saga = Saga("claim", input=Claim, version=1)


@saga.step(timeout=timedelta(minutes=2))
def submit(ctx: StepContext[Claim]) -> str:
    """Record the claim."""
    EFFECTS[ctx.idempotency_key].append("submitted")
    return f"claim-{ctx.input.expense_id}"


@submit.compensation
def withdraw(ctx: StepContext[Claim]) -> None:
    """Withdraw the claim."""
    EFFECTS[ctx.idempotency_key].append("withdrawn")


saga.wait_for(
    "decision", signal=("approved", "rejected"), payload=Decision, timeout=timedelta(minutes=10)
)


@saga.branch(targets=("pay", "notify_rejected"))
def route(view: WorkflowView[Claim]) -> str:
    """Pay an approved claim, else tell the employee."""
    return "pay" if view.received("approved") else "notify_rejected"


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=2), then=END)
def pay(ctx: StepContext[Claim]) -> str:
    """Pay the employee back."""
    approval: Decision = ctx.signal("approved")
    EFFECTS[ctx.idempotency_key].append(f"paid by {approval.approver}")
    return approval.approver


@saga.step(kind=StepKind.RETRIABLE, timeout=timedelta(minutes=2), then=END)
def notify_rejected(ctx: StepContext[Claim]) -> str:
    """Tell the employee the claim was rejected."""
    rejection: Decision = ctx.signal("rejected")
    EFFECTS[ctx.idempotency_key].append(f"rejected by {rejection.approver}")
    return rejection.approver


class Order(BaseModel):
    """An order to reserve and charge."""

    order_id: str


fragile = Saga("fragile", input=Order, version=1)
_ONCE = Retry(max_attempts=2, initial_interval=timedelta(milliseconds=50))


@fragile.step(timeout=timedelta(minutes=1), retry=_ONCE)
def reserve(ctx: StepContext[Order]) -> None:
    """Reserve the goods."""
    EFFECTS[ctx.idempotency_key].append("reserved")


@reserve.compensation(retry=_ONCE)
def release(ctx: StepContext[Order]) -> None:
    """Release them: the stock service refuses, for good."""
    raise NonRetryableError("the stock service lost the reservation")


@fragile.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=1), retry=_ONCE)
def charge(ctx: StepContext[Order]) -> None:
    """Charge the card: declined."""
    raise NonRetryableError("card declined")
