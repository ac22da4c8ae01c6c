from examples.order_saga import LEDGER, OrderInput, Shipment, saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import Fault, SagaTestEnvironment, assert_failure_matrix

ORDER = OrderInput(order_id="o-1", customer_email="ann@example.com", amount_cents=1250, sku="mug")


def test_an_order_goes_through_and_each_effect_happens_once() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(ORDER, workflow_id="ord-ok")
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.result_of(wf, "create_shipment") == Shipment(tracking_number="TRK-o-1")
        assert env.result(wf)["charge_payment"] == {"charge_id": "ch-o-1", "amount_cents": 1250}
    assert LEDGER["ord-ok/notify_customer/action"] == "mailed ann@example.com TRK-o-1"


def test_a_failed_shipment_refunds_and_releases_latest_first() -> None:
    with SagaTestEnvironment(saga) as env:
        env.fail("create_shipment", non_retryable=True)
        wf = env.start(ORDER, workflow_id="ord-ship-fails")
        assert env.status(wf).status is WorkflowStatus.COMPENSATED
        assert env.compensated(wf) == ["reserve_inventory", "charge_payment"]
    assert LEDGER["ord-ship-fails/charge_payment/compensate"] == "refunded ch-o-1"
    assert LEDGER["ord-ship-fails/reserve_inventory/compensate"] == "released rs-o-1"


def test_a_non_positive_amount_fails_without_retrying() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(ORDER.model_copy(update={"amount_cents": 0}))
        status = env.status(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        assert status.error is not None
        assert status.error.type == "NonRetryableError"
        assert env.executed(wf) == ["charge_payment"]


def test_the_failure_matrix_holds() -> None:
    cases = assert_failure_matrix(saga, ORDER)
    assert len(cases) == 12
    notify = [c for c in cases if c.step == "notify_customer" and c.fault.value != "deliver_twice"]
    assert {c.status for c in notify} == {WorkflowStatus.FAILED}


def test_a_command_delivered_twice_runs_twice_but_charges_once() -> None:
    with SagaTestEnvironment(saga) as env:
        env.inject("charge_payment", Fault.RUN_TWICE)
        wf = env.start(ORDER, workflow_id="ord-twice")
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        runs = [x for x in env.executions if x.step == "charge_payment"]
        assert len(runs) == 2
        assert {x.idempotency_key for x in runs} == {"ord-twice/charge_payment/action"}
        assert env.event_types(wf).count(EventType.ANSWER_IGNORED) == 1
    charges = [key for key in LEDGER if key.startswith("ord-twice/charge_payment")]
    assert charges == ["ord-twice/charge_payment/action"]
