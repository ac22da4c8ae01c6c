"""The compiled plan: one node type per kind, immutable, naming no topic or step function."""

import dataclasses
from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import Saga, StepContext, StepKind, WorkflowView
from sagas.engine import Plan, compile_saga
from sagas.engine.nodes import BranchNode, ChildNode, CompiledNode, SleepNode, StepNode, WaitNode
from sagas.events import Event, EventType, Origin


class In(BaseModel):
    n: int = 0


def make_saga() -> Saga[In]:
    child = Saga("child", input=In)
    child.step(name="work")(lambda ctx: None)
    saga = Saga("parent", input=In)

    @saga.step
    def first(ctx: StepContext[In]) -> None:
        return None

    @first.compensation
    def undo_first(ctx: StepContext[In]) -> None:
        return None

    saga.sleep("pause", timedelta(seconds=1))
    saga.wait_for("go", signal="go")

    @saga.branch(targets=("sub", "END"))
    def route(view: WorkflowView[In]) -> str:
        return "sub"

    saga.child("sub", saga=child, input=lambda view: In(n=1), kind=StepKind.PIVOT)
    return saga


def test_every_kind_compiles_to_its_own_frozen_node_type() -> None:
    plan = compile_saga(make_saga())
    kinds = [type(node) for node in plan.nodes]
    assert kinds == [StepNode, SleepNode, WaitNode, BranchNode, ChildNode]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.nodes[0].next = 0  # type: ignore[misc]


def test_a_compiled_plan_cannot_change() -> None:
    plan = compile_saga(make_saga())
    with pytest.raises(AttributeError, match="cannot change"):
        plan.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.steps["first"] = plan.steps["sub"]  # type: ignore[index]
    assert not hasattr(plan, "reply_topic")
    assert not any(hasattr(spec, "fn") for spec in plan.steps.values())


def test_a_node_of_no_known_kind_is_refused_not_taken_for_a_child_saga() -> None:
    real = compile_saga(make_saga())
    odd = CompiledNode("odd", 0, 1)
    plan = Plan(
        name="parent",
        version=1,
        nodes=(odd,),  # type: ignore[arg-type]
        steps=dict(real.steps),
        input_model=In,
        results={},
        signals={},
    )
    start = Event(
        event_id="e1",
        workflow_id="w1",
        saga="parent",
        version=1,
        type=EventType.START_REQUESTED,
        origin=Origin.CLIENT,
        time_ms=0,
        payload="{}",
    )
    with pytest.raises(AssertionError, match="CompiledNode"):
        plan.handle(None, start, 0)
