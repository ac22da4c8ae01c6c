from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import DefinitionError, Saga, StepContext
from sagas.engine.versions import compile_versions
from sagas.errors import UnapplicableEventError
from sagas.events import Event, EventType, Origin, WorkflowStatus
from sagas.testing import SagaTestEnvironment


class Parcel(BaseModel):
    parcel_id: str


class Checkout(BaseModel):
    order_id: str


def undo(ctx: StepContext[Checkout]) -> None:
    return None


def make_child() -> Saga[Parcel]:
    child = Saga("delivery", input=Parcel)

    @child.step(timeout=timedelta(seconds=5))
    def pick(ctx: StepContext[Parcel]) -> str:
        return f"picked {ctx.input.parcel_id}"

    pick.compensation(lambda ctx: None)
    child.wait_for("handed_over", timeout=timedelta(days=2))
    return child


def make_parent(child: Saga[Parcel]) -> Saga[Checkout]:
    parent = Saga("checkout", input=Checkout)
    parent.step(name="reserve", timeout=timedelta(seconds=5))(lambda ctx: "r").compensation(undo)
    parent.child(
        "deliver", saga=child, input=lambda view: Parcel(parcel_id=f"p-{view.input.order_id}")
    ).compensation(undo)
    return parent


def test_a_child_saga_runs_and_its_result_is_the_step_result() -> None:
    child = make_child()
    with SagaTestEnvironment(make_parent(child), child) as env:
        wf = env.start(Checkout(order_id="o1"), workflow_id="c1")
        assert env.status("c1/deliver").status is WorkflowStatus.RUNNING
        env.signal("c1/deliver", "handed_over")
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.result(wf)["deliver"] == {"pick": "picked p-o1"}
        started = env.history("c1/deliver")[0]
        assert started.parent == "checkout/c1/deliver"


def test_a_failing_child_fails_the_step_and_compensates_the_parent() -> None:
    child = make_child()
    with SagaTestEnvironment(make_parent(child), child) as env:
        wf = env.start(Checkout(order_id="o2"), workflow_id="c2")
        env.advance(timedelta(days=2))
        assert env.status("c2/deliver").status is WorkflowStatus.COMPENSATED
        status = env.status(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        assert status.failed_step == "deliver"
        assert env.compensated(wf) == ["reserve"]


def test_cancelling_the_parent_cancels_the_child() -> None:
    child = make_child()
    with SagaTestEnvironment(make_parent(child), child) as env:
        wf = env.start(Checkout(order_id="o3"), workflow_id="c3")
        env.cancel(wf, "customer changed their mind")
        assert env.status("c3/deliver").status is WorkflowStatus.CANCELLED
        assert env.compensated("c3/deliver") == ["pick"]
        assert env.status(wf).status is WorkflowStatus.CANCELLED
        assert env.compensated(wf) == ["reserve"]


def test_terminating_the_parent_terminates_the_child() -> None:
    child = make_child()
    with SagaTestEnvironment(make_parent(child), child) as env:
        wf = env.start(Checkout(order_id="o4"), workflow_id="c4")
        env.terminate(wf, "fraud")
        assert env.status("c4/deliver").status is WorkflowStatus.TERMINATED
        assert env.status(wf).status is WorkflowStatus.TERMINATED


def make_version(version: int) -> Saga[Parcel]:
    saga = Saga("versioned", input=Parcel, version=version)
    saga.step(name="first", timeout=timedelta(seconds=5))(lambda ctx: version).compensation(
        lambda ctx: None
    )
    saga.sleep("pause", timedelta(hours=1))
    if version == 2:
        saga.step(name="added_in_v2", timeout=timedelta(seconds=5))(lambda ctx: 2).compensation(
            lambda ctx: None
        )
    return saga


def test_workflows_stay_on_their_version_and_start_uses_the_newest() -> None:
    v1 = make_version(1)
    with SagaTestEnvironment([v1]) as env:
        old = env.start(Parcel(parcel_id="a"), workflow_id="old")
        snapshot = env.states[old]
        history = env.history(old)
    with SagaTestEnvironment([v1, make_version(2)]) as env:
        env.states[old] = snapshot
        env.histories[old] = history
        new = env.start(Parcel(parcel_id="b"), workflow_id="new")
        env.advance(timedelta(hours=1))
        assert env.status(old).version == 1
        assert env.result(old) == {"first": 1}
        assert env.status(new).version == 2
        assert env.result(new) == {"first": 2, "added_in_v2": 2}


def test_versions_must_share_a_name_and_differ() -> None:
    with pytest.raises(DefinitionError, match="share its name"):
        compile_versions([make_version(1), make_child()])
    with pytest.raises(DefinitionError, match="version 1 is given twice"):
        compile_versions([make_version(1), make_version(1)])
    versions = compile_versions([make_version(2), make_version(1)])
    assert versions.newest.version == 2
    assert list(versions.plans) == [1, 2]
    answer = Event(
        event_id="x",
        workflow_id="w",
        saga="versioned",
        version=7,
        type=EventType.SIGNAL,
        origin=Origin.CLIENT,
        time_ms=0,
    )
    with pytest.raises(UnapplicableEventError, match=r"version 7 .* is not deployed"):
        versions.plan_for(None, answer)
