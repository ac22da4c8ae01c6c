from datetime import timedelta

import pytest

from examples.delivery_saga import SHIPMENTS, Address, Delivery, saga
from sagas import DefinitionError, Retry, Saga, StepContext, StepKind, UpdateRejectedError
from sagas.engine import compile_saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment

HOME = Address(street="1 Old Road", postcode="11111")
NEW = Address(street="2 New Street", postcode="22222")


def test_an_address_changed_before_shipping_is_where_the_parcel_goes() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Delivery(order_id="o1", address=HOME), workflow_id="d-1")
        assert env.update(wf, "change_address", NEW) == "2 New Street, 22222"
        env.signal(wf, "packed")
        assert env.status(wf).status is WorkflowStatus.COMPLETED
    assert SHIPMENTS["d-1/ship/action"] == "2 New Street, 22222"


def test_an_update_after_the_pivot_is_rejected() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Delivery(order_id="o2", address=HOME), workflow_id="d-2")
        env.signal(wf, "packed")
        with pytest.raises(UpdateRejectedError) as rejected:
            env.update(wf, "change_address", NEW)
        assert rejected.value.reason == "WorkflowEnded"
    assert SHIPMENTS["d-2/ship/action"] == "1 Old Road, 11111"


def test_an_update_once_ship_has_run_is_too_late() -> None:
    with SagaTestEnvironment(saga) as env:
        env.time_out("notify")  # keeps the workflow running after the pivot
        wf = env.start(Delivery(order_id="o3", address=HOME), workflow_id="d-3")
        env.signal(wf, "packed")
        assert env.status(wf).status is WorkflowStatus.RUNNING
        with pytest.raises(UpdateRejectedError) as rejected:
            env.update(wf, "change_address", NEW)
        assert rejected.value.reason == "UpdateTooLate"
        assert "ship" in rejected.value.message


def test_the_validator_rejects_and_nothing_changes() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Delivery(order_id="o4", address=HOME), workflow_id="d-4")
        with pytest.raises(UpdateRejectedError, match="postcode"):
            env.update(wf, "change_address", Address(street="3 Nowhere", postcode=" "))
        env.signal(wf, "packed")
    assert SHIPMENTS["d-4/ship/action"] == "1 Old Road, 11111"


def test_an_update_sent_twice_is_applied_once_and_answered_twice() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Delivery(order_id="o5", address=HOME), workflow_id="d-5")
        first = env.update(wf, "change_address", NEW, update_id="u-1")
        again = env.update(wf, "change_address", HOME, update_id="u-1")
        assert first == again == "2 New Street, 22222"
        applied = [e for e in env.history(wf) if e.type is EventType.UPDATE_COMPLETED]
        assert len(applied) == 2
        assert "value" not in (applied[1].payload or "")
        env.signal(wf, "packed")
    assert SHIPMENTS["d-5/ship/action"] == "2 New Street, 22222"


def test_an_unknown_update_is_rejected_not_dead_lettered() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Delivery(order_id="o6", address=HOME), workflow_id="d-6")
        with pytest.raises(UpdateRejectedError) as rejected:
            env.update(wf, "change_colour", "red")
        assert rejected.value.reason == "UnknownUpdate"
        assert env.status(wf).status is WorkflowStatus.RUNNING


def _saga_with_pivot(name: str) -> Saga[Delivery]:
    s = Saga(name, input=Delivery)

    @s.step(kind=StepKind.PIVOT)
    def charge(ctx: StepContext[Delivery]) -> None: ...

    @s.step(kind=StepKind.RETRIABLE, retry=Retry(max_attempts=2), timeout=timedelta(seconds=1))
    def email(ctx: StepContext[Delivery]) -> None: ...

    return s


def test_the_compiler_rejects_an_update_that_could_act_after_the_pivot() -> None:
    s = _saga_with_pivot("late-update")
    s.update("late", payload=Address, before="email")(lambda view, address: None)
    with pytest.raises(DefinitionError) as error:
        compile_saga(s)
    assert (error.value.saga, error.value.step) == ("late-update", "late")
    assert "'charge', the point of no return" in error.value.message


def test_the_compiler_rejects_an_update_without_before_in_a_saga_with_a_pivot() -> None:
    s = _saga_with_pivot("open-update")
    s.update("any_time", payload=Address)(lambda view, address: None)
    with pytest.raises(DefinitionError, match="before='charge'") as error:
        compile_saga(s)
    assert error.value.step == "any_time"


def test_the_compiler_rejects_an_update_named_like_a_signal_or_before_an_unknown_step() -> None:
    s = Saga("clash", input=Delivery)
    s.wait_for("packed")
    s.update("packed", payload=Address)(lambda view, address: None)
    with pytest.raises(DefinitionError, match="name of a signal"):
        compile_saga(s)
    t = Saga("unknown-before", input=Delivery)
    t.wait_for("packed")
    t.update("move", payload=Address, before="nope")(lambda view, address: None)
    with pytest.raises(DefinitionError, match="unknown step 'nope'") as error:
        compile_saga(t)
    assert (error.value.saga, error.value.step) == ("unknown-before", "move")
