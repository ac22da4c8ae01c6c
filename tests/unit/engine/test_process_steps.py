"""Steps declared executor="process": what the compiler refuses, how they run."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from pydantic import BaseModel

from processors.step_processes import StepProcessPool
from sagas import DefinitionError, NonRetryableError, Retry, Saga, StepContext, StepKind
from sagas.engine import compile_saga
from sagas.engine.process_call import ProcessCall
from sagas.testing import SagaTestEnvironment


class Numbers(BaseModel):
    n: int


saga = Saga("crunch", input=Numbers)


@saga.step(kind=StepKind.PIVOT, executor="process")
def square(ctx: StepContext[Numbers]) -> dict[str, int]:
    ctx.heartbeat({"at": 1})
    return {"square": ctx.input.n**2, "pid": os.getpid()}


def fails(ctx: StepContext[Any]) -> None:
    raise NonRetryableError("no such account")


def sleeps(ctx: StepContext[Any]) -> int:
    time.sleep(30)
    return 1


def _saga_with(fn: Any, **options: Any) -> Saga[Numbers]:
    other = Saga("bad", input=Numbers)
    other.step(kind=StepKind.PIVOT, executor="process", **options)(fn)
    return other


def test_an_async_action_is_refused() -> None:
    async def later(ctx: StepContext[Any]) -> None: ...

    with pytest.raises(DefinitionError, match="plain functions") as err:
        compile_saga(_saga_with(later))
    assert (err.value.saga, err.value.step) == ("bad", "later")


def test_a_lambda_or_nested_function_is_refused() -> None:
    def nested(ctx: StepContext[Any]) -> None: ...

    for fn in (nested, lambda ctx: None):
        with pytest.raises(DefinitionError, match="module level") as err:
            compile_saga(_saga_with(fn, name="step"))
        assert (err.value.saga, err.value.step) == ("bad", "step")


def test_an_unknown_executor_is_refused() -> None:
    other = Saga("bad", input=Numbers)
    other.step(kind=StepKind.PIVOT, executor="gpu")(fails)  # type: ignore[call-overload]
    with pytest.raises(DefinitionError, match="executor must be"):
        compile_saga(other)


def test_types_a_process_cannot_receive_are_refused() -> None:
    class Local(BaseModel):
        n: int

    other = Saga("bad", input=Local)
    other.step(kind=StepKind.PIVOT, executor="process")(fails)
    with pytest.raises(DefinitionError, match="cannot be sent to a process") as err:
        compile_saga(other)
    assert err.value.step == "fails"


def test_the_test_kit_runs_a_process_step() -> None:
    with SagaTestEnvironment(saga) as env:
        workflow = env.start(Numbers(n=7))
        env.run_until_complete(workflow)
        assert env.result_of(workflow, "square")["square"] == 49


def _call(fn: Any, step: str) -> ProcessCall:
    plan = compile_saga(saga)
    return ProcessCall(
        module=fn.__module__, qualname=fn.__qualname__, step=step, retry=Retry(),
        types=plan.types, workflow_id="wf-1", version=1, input_json='{"n": 3}', results={},
        signals={}, attempt=1, idempotency_key="k", heartbeat_details=None,
        sets_attributes=True,
    )  # fmt: skip


@pytest.mark.timeout(60)
def test_the_pool_runs_answers_errors_and_kills_at_the_deadline() -> None:
    async def scenario() -> None:
        pool = StepProcessPool(1)
        beats: list[Any] = []
        try:
            done = await pool.run(_call(square.fn, "square"), beats.append)
            assert done.error is None
            assert done.payload is not None
            assert '"square":9' in done.payload
            assert beats == [{"at": 1}]
            failed = await pool.run(_call(fails, "fails"), None)
            assert failed.error is not None
            assert (failed.error.type, failed.error.non_retryable) == ("NonRetryableError", True)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pool.run(_call(sleeps, "sleeps"), None), 0.5)
            assert pool.killed == 1
            again = await pool.run(_call(square.fn, "square"), None)
            assert again.payload is not None
            assert '"square":9' in again.payload
        finally:
            pool.close()

    asyncio.run(scenario())
