"""A step's dispatch objective: its own, else its saga's, compiled to milliseconds."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind
from sagas.engine import compile_saga


class In(BaseModel):
    n: int


def test_a_step_objective_overrides_the_saga_one() -> None:
    saga = Saga("objectives", input=In, dispatch_objective=timedelta(milliseconds=50))

    @saga.step(kind=StepKind.PIVOT)
    def inherits(ctx: StepContext[In]) -> None: ...

    @saga.step(kind=StepKind.RETRIABLE, retry=Retry(max_attempts=2), timeout=timedelta(seconds=1),
               dispatch_objective=timedelta(milliseconds=200))  # fmt: skip
    def own(ctx: StepContext[In]) -> None: ...

    plan = compile_saga(saga)

    assert plan.steps["inherits"].dispatch_objective_ms == 50
    assert plan.steps["own"].dispatch_objective_ms == 200


def test_no_objective_by_default() -> None:
    saga = Saga("no-objective", input=In)

    @saga.step(kind=StepKind.PIVOT)
    def step(ctx: StepContext[In]) -> None: ...

    assert compile_saga(saga).steps["step"].dispatch_objective_ms is None
