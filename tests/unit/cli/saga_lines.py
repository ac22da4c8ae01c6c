"""Two versions of one saga, an alias, a list of one of them, and a saga of another name."""

from __future__ import annotations

from datetime import timedelta

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
v2.step(name="report", after="work", kind=StepKind.RETRIABLE, timeout=timedelta(seconds=5))(_work)
latest = v2
"""The same object as ``v2``: it counts once."""
newest_only = [v2]
"""A deployment that has retired version 1."""

audit = Saga("audit", input=Job, version=1)
audit.step(name="record", kind=StepKind.PIVOT)(_work)
