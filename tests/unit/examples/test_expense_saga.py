from datetime import timedelta

import pytest

from examples.expense_saga import PAYOUTS, Decision, Expense, saga
from sagas import UnapplicableEventError
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment

CLAIM = Expense(expense_id="x-1", employee="cy", amount_cents=4200)


@pytest.mark.parametrize(
    ("signal", "before_wait", "step"),
    [
        ("approved", False, "reimburse"),
        ("approved", True, "reimburse"),
        ("rejected", False, "notify_rejected"),
        ("rejected", True, "notify_rejected"),
    ],
)
def test_each_answer_takes_its_branch(signal: str, before_wait: bool, step: str) -> None:
    with SagaTestEnvironment(saga) as env:
        if before_wait:
            env.fail("submit", attempts=[1])
        wf = env.start(CLAIM, workflow_id=f"exp-{signal}-{before_wait}")
        env.signal(wf, signal, Decision(approver="di", comment="nope"))
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPLETED
        assert env.executed(wf) == ["submit", step]
        taken = [e for e in env.history(wf) if e.type is EventType.BRANCH_TAKEN]
        assert [e.name for e in taken] == [step]


def test_no_answer_in_14_days_escalates() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(CLAIM, workflow_id="exp-silent")
        env.advance(timedelta(days=14))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.executed(wf) == ["submit", "escalate"]
    assert PAYOUTS["exp-silent/escalate/action"] == "escalated x-1"


def test_the_approval_payload_reaches_the_reimbursement() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(CLAIM, workflow_id="exp-paid")
        env.signal(wf, "approved", Decision(approver="di"))
    assert PAYOUTS["exp-paid/reimburse/action"] == "paid 4200 approved by di"


def test_unknown_signals_and_bad_payloads_are_rejected_and_the_workflow_waits_on() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(CLAIM)
        env.signal(wf, "maybe")
        env.signal(wf, "approved", {"nope": 1})
        rejected = [e for e in env.history(wf) if e.type is EventType.SIGNAL_REJECTED]
        assert [(e.name, e.error.type if e.error else None) for e in rejected] == [
            ("maybe", "UnknownSignal"),
            ("approved", "InvalidSignalPayload"),
        ]
        assert "approver" in (env.status(wf).last_rejection or "")
        assert not env.status(wf).parked
        env.signal(wf, "approved", Decision(approver="di"))
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPLETED


def test_signals_to_unknown_workflows_are_refused() -> None:
    with (
        SagaTestEnvironment(saga) as env,
        pytest.raises(UnapplicableEventError, match="no workflow"),
    ):
        env.signal("nobody", "approved", Decision(approver="di"))
