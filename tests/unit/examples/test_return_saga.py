from examples.return_saga import LEDGER, Refund, ReturnInput, v1, v2
from sagas.events import WorkflowStatus
from sagas.testing import SagaTestEnvironment, assert_failure_matrix

RETURN = ReturnInput(return_id="r-1", customer_email="ann@example.com", amount_cents=2000)


def test_both_versions_run_side_by_side_each_workflow_on_its_own() -> None:
    with SagaTestEnvironment([v1, v2]) as env:
        old = env.start(RETURN, workflow_id="ret-v1", version=1)
        new = env.start(RETURN.model_copy(update={"store_credit": True}), workflow_id="ret-v2")
        assert env.status(old).status is WorkflowStatus.COMPLETED
        assert env.status(new).status is WorkflowStatus.COMPLETED
        assert (env.status(old).version, env.status(new).version) == (1, 2)
        assert env.executed(old) == ["book_pickup", "refund_payment", "notify_customer"]
        assert env.executed(new) == ["book_pickup", "hold_restock_slot", "refund_payment"]
        assert env.result_of(new, "refund_payment") == Refund(
            refund_id="sc-r-1", amount_cents=2200, method="credit"
        )
    assert LEDGER["ret-v1/refund_payment/action"] == "refunded 2000 to the card"
    assert LEDGER["ret-v1/notify_customer/action"] == "mailed ann@example.com rf-r-1"
    assert LEDGER["ret-v2/refund_payment/action"] == "credited 2200 and mailed ann@example.com"
    assert "ret-v2/notify_customer/action" not in LEDGER


def test_version_2_undoes_its_added_step_and_the_one_it_kept_latest_first() -> None:
    with SagaTestEnvironment(v2) as env:
        env.fail("refund_payment", non_retryable=True)
        wf = env.start(RETURN, workflow_id="ret-v2-refund-fails")
        assert env.status(wf).status is WorkflowStatus.COMPENSATED
        assert env.compensated(wf) == ["hold_restock_slot", "book_pickup"]
    assert LEDGER["ret-v2-refund-fails/hold_restock_slot/compensate"] == "slot sl-r-1 released"
    assert LEDGER["ret-v2-refund-fails/book_pickup/compensate"] == "pickup pk-r-1 cancelled"


def test_a_full_warehouse_cancels_the_pickup_in_version_2_only() -> None:
    full = RETURN.model_copy(update={"warehouse": "north"})
    with SagaTestEnvironment([v1, v2]) as env:
        old = env.start(full, workflow_id="ret-north-v1", version=1)
        new = env.start(full, workflow_id="ret-north-v2")
        assert env.status(old).status is WorkflowStatus.COMPLETED
        assert env.status(new).status is WorkflowStatus.COMPENSATED
        assert env.compensated(new) == ["book_pickup"]


def test_the_failure_matrix_holds_for_each_version() -> None:
    old, new = assert_failure_matrix(v1, RETURN), assert_failure_matrix(v2, RETURN)
    assert {c.step for c in old} == {"book_pickup", "refund_payment", "notify_customer"}
    assert {c.step for c in new} == {"book_pickup", "hold_restock_slot", "refund_payment"}
