from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from sagas import END, DefinitionError, Retry, Saga, StepContext, StepKind
from sagas.engine import compile_saga


class In(BaseModel):
    n: int = 0


class NotSerializable:
    pass


def undo(ctx: StepContext[In]) -> None:
    return None


def compensatable(saga: Saga[In], name: str, **options: Any) -> None:
    step = saga.step(name=name, **options)(lambda ctx: None)
    step.compensation(undo)


def test_a_valid_saga_compiles_once_and_lists_its_queues() -> None:
    saga = Saga("shop", input=In, version=2)
    compensatable(saga, "a", queue="payments")
    saga.step(name="b", kind=StepKind.PIVOT)(lambda ctx: None)
    plan = compile_saga(saga)
    assert plan is compile_saga(saga)
    assert (plan.name, plan.version) == ("shop", 2)
    assert plan.queues == frozenset({"payments", "shop"})
    assert [node.name for node in plan.nodes] == ["a", "b"]


def build(mutate: Any) -> Saga[In]:
    saga = Saga("shop", input=In)
    mutate(saga)
    return saga


def dup(saga: Saga[In]) -> None:
    compensatable(saga, "a")
    compensatable(saga, "a")


def after_pivot(saga: Saga[In]) -> None:
    saga.step(name="p", kind=StepKind.PIVOT)(lambda ctx: None)
    compensatable(saga, "late")


def two_pivots(saga: Saga[In]) -> None:
    saga.step(name="p1", kind=StepKind.PIVOT)(lambda ctx: None)
    saga.step(name="p2", kind=StepKind.PIVOT)(lambda ctx: None)


def no_compensation(saga: Saga[In]) -> None:
    saga.step(name="a")(lambda ctx: None)


def unbounded_retriable(saga: Saga[In]) -> None:
    saga.step(
        name="r",
        kind=StepKind.RETRIABLE,
        retry=Retry(max_attempts=None),
        timeout=timedelta(seconds=1),
    )(lambda ctx: None)


def retriable_without_timeout(saga: Saga[In]) -> None:
    saga.step(name="r", kind=StepKind.RETRIABLE, retry=Retry(max_attempts=3))(lambda ctx: None)


def bad_result(saga: Saga[In]) -> None:
    def a(ctx: StepContext[In]) -> NotSerializable:
        return NotSerializable()

    saga.step(a).compensation(undo)


def bad_step_name(saga: Saga[In]) -> None:
    compensatable(saga, "has space")


def bad_queue(saga: Saga[In]) -> None:
    compensatable(saga, "a", queue="pay/ments")


def zero_timeout(saga: Saga[In]) -> None:
    compensatable(saga, "a", timeout=timedelta(0))


def unknown_branch_target(saga: Saga[In]) -> None:
    saga.branch(targets=["nowhere"], name="route")(lambda view: "nowhere")
    compensatable(saga, "a")


def backward_jump(saga: Saga[In]) -> None:
    compensatable(saga, "a")
    saga.sleep("nap", timedelta(seconds=1), then="a")


def pivot_with_compensation(saga: Saga[In]) -> None:
    saga.step(name="p", kind=StepKind.PIVOT)(lambda ctx: None).compensation(undo)


def on_timeout_without_timeout(saga: Saga[In]) -> None:
    saga.wait_for("w", on_timeout=END)


def negative_sleep(saga: Saga[In]) -> None:
    saga.sleep("nap", timedelta(seconds=-1))


def pivot_in_group(saga: Saga[In]) -> None:
    with saga.parallel("g"):
        saga.step(name="p", kind=StepKind.PIVOT)(lambda ctx: None)


def signal_two_types(saga: Saga[In]) -> None:
    saga.wait_for("w1", signal="s", payload=In)
    saga.wait_for("w2", signal="s", payload=int)


def empty(saga: Saga[In]) -> None:
    return None


@pytest.mark.parametrize(
    ("mutate", "message", "step"),
    [
        (dup, "duplicate step name 'a'", "a"),
        (after_pivot, "compensatable step 'late' comes after 'p'", "late"),
        (two_pivots, "more than one pivot", "p2"),
        (no_compensation, "compensatable step has no compensation", "a"),
        (unbounded_retriable, "bounded retry", "r"),
        (retriable_without_timeout, "bounded retry", "r"),
        (bad_result, "cannot be serialized", "a"),
        (bad_step_name, "step name 'has space' is not valid", "has space"),
        (bad_queue, "queue 'pay/ments' is not valid", "a"),
        (zero_timeout, "timeout must be positive", "a"),
        (unknown_branch_target, "unknown target 'nowhere'", "route"),
        (backward_jump, "jumps only go forward", "nap"),
        (pivot_with_compensation, "pivot step cannot have a compensation", "p"),
        (on_timeout_without_timeout, "on_timeout needs a timeout", "w"),
        (negative_sleep, "sleep duration must be positive", "nap"),
        (pivot_in_group, "pivot step cannot be in a parallel group", "p"),
        (signal_two_types, "two payload types", "w2"),
        (empty, "has no steps", None),
    ],
)
def test_definition_errors_name_the_saga_and_the_step(
    mutate: Any, message: str, step: str | None
) -> None:
    with pytest.raises(DefinitionError, match=message) as info:
        compile_saga(build(mutate))
    assert info.value.saga == "shop"
    assert info.value.step == step


def test_bad_saga_name_version_and_input() -> None:
    with pytest.raises(DefinitionError, match="saga name 'a b'"):
        compile_saga(Saga("a b", input=In))
    saga = Saga("ok", input=In, version=0)
    compensatable(saga, "a")
    with pytest.raises(DefinitionError, match="version must be a positive int"):
        compile_saga(saga)
    bad_input = Saga("ok", input=dict)  # type: ignore[type-var]
    with pytest.raises(DefinitionError, match="pydantic BaseModel"):
        compile_saga(bad_input)


def test_nothing_can_be_added_after_compiling() -> None:
    saga = Saga("shop", input=In)
    compensatable(saga, "a")
    compile_saga(saga)
    with pytest.raises(DefinitionError, match="already compiled"):
        compensatable(saga, "b")


def test_a_step_takes_one_compensation_only() -> None:
    saga = Saga("shop", input=In)
    step = saga.step(name="a")(lambda ctx: None)
    step.compensation(undo)
    with pytest.raises(DefinitionError, match="already has a compensation"):
        step.compensation(undo)


def async_branch(saga: Saga[In]) -> None:
    async def route(view: object) -> str:
        return END

    saga.branch(targets=[END], name="route")(route)  # type: ignore[arg-type]


def test_an_async_branch_chooser_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"plain \(not async\) function") as info:
        compile_saga(build(async_branch))
    assert info.value.step == "route"
