from examples.bundle_saga import LEDGER, OUT_OF_STOCK, Bundle, payment, saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment


def test_a_completed_child_is_undone_by_its_own_compensations_latest_first() -> None:
    OUT_OF_STOCK.add("rare")
    with SagaTestEnvironment(saga, payment) as env:
        wf = env.start(Bundle(order_id="b1", amount_cents=10, sku="rare"), workflow_id="bun-1")
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        assert [x for x in LEDGER if x.endswith("b1")] == [
            "authorize b1",
            "capture b1",
            "refund b1",
            "void b1",
        ]
        child = env.states[wf].steps["pay"].child or ""
        assert env.status(child).status is WorkflowStatus.COMPENSATED
        assert env.compensated(child) == ["capture", "authorize"]
        assert env.compensated(wf) == ["pay"]
        assert EventType.COMPENSATE_REQUESTED in env.event_types(child)


def test_a_child_that_completes_with_its_parent_stays_completed() -> None:
    with SagaTestEnvironment(saga, payment) as env:
        wf = env.start(Bundle(order_id="b2", amount_cents=10, sku="mug"), workflow_id="bun-2")
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPLETED
        child = env.states[wf].steps["pay"].child or ""
        assert env.status(child).status is WorkflowStatus.COMPLETED
        assert env.compensated(child) == []
