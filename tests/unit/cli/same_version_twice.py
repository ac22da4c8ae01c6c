"""A module that declares version 2 of one saga twice (a copy left behind by mistake)."""

from __future__ import annotations

from pydantic import BaseModel

from sagas import Saga, StepContext, StepKind


class Job(BaseModel):
    """A unit of work."""

    job_id: str


def _work(ctx: StepContext[Job]) -> None:
    return None


v1 = Saga("job", input=Job, version=1)
v1.step(name="work", kind=StepKind.PIVOT)(_work)
v2 = v1.derive(version=2)
old_v2 = Saga("job", input=Job, version=2)
old_v2.step(name="work", kind=StepKind.PIVOT)(_work)
