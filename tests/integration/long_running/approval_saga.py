"""Expense approval as in ``examples/expense_saga.py``, with a wait of seconds, not days.

Submit, wait up to :data:`DECISION_TIMEOUT` for an ``approved`` or ``rejected`` signal,
then reimburse or notify; no answer escalates. ``EFFECTS`` records each step's run in the
process that runs the step worker, by idempotency key.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from pydantic import BaseModel

from sagas import END, Saga, StepContext, StepKind, WorkflowView

DECISION_TIMEOUT = timedelta(seconds=8)

EFFECTS: defaultdict[str, list[str]] = defaultdict(list)
"""What each step did, by idempotency key; more than one entry is a step run twice."""


class Claim(BaseModel):
    """An expense claim."""

    expense_id: str
    amount_cents: int


class Decision(BaseModel):
    """The approver's answer, sent as the ``approved`` or ``rejected`` signal."""

    approver: str


saga = Saga("approval", input=Claim, version=1)


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=2))
def submit(ctx: StepContext[Claim]) -> str:
    """Record the claim."""
    EFFECTS[ctx.idempotency_key].append("submitted")
    return f"claim-{ctx.input.expense_id}"


saga.wait_for(
    "decision",
    signal=("approved", "rejected"),
    payload=Decision,
    timeout=DECISION_TIMEOUT,
    on_timeout="escalate",
)


@saga.branch(targets=("reimburse", "notify_rejected"))
def route(view: WorkflowView[Claim]) -> str:
    """Reimburse an approved claim, else tell the employee."""
    return "reimburse" if view.received("approved") else "notify_rejected"


@saga.step(kind=StepKind.RETRIABLE, timeout=timedelta(minutes=2), then=END)
def reimburse(ctx: StepContext[Claim]) -> str:
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


@saga.step(kind=StepKind.RETRIABLE, timeout=timedelta(minutes=2))
def escalate(ctx: StepContext[Claim]) -> None:
    """Ask a manager, since nobody answered in time."""
    EFFECTS[ctx.idempotency_key].append("escalated")
