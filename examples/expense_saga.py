"""Expense approval: submit, wait for an ``approved`` or ``rejected`` signal, then
reimburse or tell the employee; no answer in 14 days escalates to their manager.

``PAYOUTS`` stands in for the finance and mail services, by idempotency key.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import END, Retry, Saga, StepContext, StepKind, WorkflowView

PAYOUTS: dict[str, str] = {}
"""Effects applied, by idempotency key; a stand-in for finance and mail."""


class Expense(BaseModel):
    """An expense claim."""

    expense_id: str
    employee: str
    amount_cents: int


class Decision(BaseModel):
    """The approver's answer, sent as the ``approved`` or ``rejected`` signal."""

    approver: str
    comment: str = ""


saga = Saga("expense", input=Expense, version=1)
_NOTIFY = Retry(max_attempts=5, initial_interval=timedelta(minutes=1))


@saga.step(timeout=timedelta(seconds=30))
def submit(ctx: StepContext[Expense]) -> str:
    """Record the claim in the expense system."""
    PAYOUTS.setdefault(ctx.idempotency_key, f"submitted {ctx.input.amount_cents}")
    return f"claim-{ctx.input.expense_id}"


@submit.compensation
def withdraw(ctx: StepContext[Expense]) -> None:
    """Withdraw the claim."""
    PAYOUTS.setdefault(ctx.idempotency_key, f"withdrew {ctx.result_of(submit)}")


saga.wait_for(
    "decision",
    signal=("approved", "rejected"),
    payload=Decision,
    timeout=timedelta(days=14),
    on_timeout="escalate",
)


@saga.branch(targets=("reimburse", "notify_rejected"))
def route(view: WorkflowView[Expense]) -> str:
    """Reimburse an approved claim, else tell the employee."""
    return "reimburse" if view.received("approved") else "notify_rejected"


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30), then=END)
def reimburse(ctx: StepContext[Expense]) -> None:
    """Pay the employee back."""
    approval: Decision = ctx.signal("approved")
    PAYOUTS.setdefault(
        ctx.idempotency_key, f"paid {ctx.input.amount_cents} approved by {approval.approver}"
    )


@saga.step(kind=StepKind.RETRIABLE, retry=_NOTIFY, timeout=timedelta(seconds=30), then=END)
def notify_rejected(ctx: StepContext[Expense]) -> None:
    """Tell the employee the claim was rejected, and why."""
    rejection: Decision = ctx.signal("rejected")
    PAYOUTS.setdefault(ctx.idempotency_key, f"rejected: {rejection.comment}")


@saga.step(kind=StepKind.RETRIABLE, retry=_NOTIFY, timeout=timedelta(seconds=30))
def escalate(ctx: StepContext[Expense]) -> None:
    """Ask the employee's manager to decide, since nobody answered in time."""
    PAYOUTS.setdefault(ctx.idempotency_key, f"escalated {ctx.input.expense_id}")
