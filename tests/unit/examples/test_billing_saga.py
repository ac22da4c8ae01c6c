from datetime import timedelta

from examples.billing_saga import DECLINED, PAYMENTS, Subscription, saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment

DAY_MS = timedelta(days=1) // timedelta(milliseconds=1)


def test_three_months_are_charged_a_month_apart() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Subscription(subscription_id="s-ok", monthly_cents=999), workflow_id="b-ok")
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPLETED
        assert env.executed(wf) == [
            "activate",
            "charge_month_1",
            "charge_month_2",
            "charge_month_3",
        ]
        assert status.updated_ms - status.started_ms == 60 * DAY_MS
    assert PAYMENTS["b-ok/charge_month_2/action"] == "charged 999"


def test_a_charge_failing_for_7_days_cancels_the_subscription() -> None:
    DECLINED.add(("s-broke", 2))
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Subscription(subscription_id="s-broke", monthly_cents=5), workflow_id="b-no")
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPLETED
        charges = [x for x in env.executions if x.step == "charge_month_2"]
        assert [x.attempt for x in charges] == [1, 2, 3, 4]
        retries = [e.due_ms or 0 for e in env.history(wf) if e.type is EventType.RETRY_SCHEDULED]
        scheduled = [e.time_ms for e in env.history(wf) if e.type is EventType.RETRY_SCHEDULED]
        assert [d - t for d, t in zip(retries, scheduled, strict=True)] == [
            DAY_MS,
            2 * DAY_MS,
            4 * DAY_MS,
        ]
        assert env.executed(wf)[-1] == "cancel_subscription"
        assert "charge_month_3" not in env.executed(wf)
    assert PAYMENTS["b-no/cancel_subscription/action"] == "cancelled"
