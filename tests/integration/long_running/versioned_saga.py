"""Two versions of one saga, as a team would deploy them side by side.

Version 1 records, waits for a ``go`` signal, sleeps :data:`NAP`, then finishes; version 2
records and finishes at once. ``EFFECTS`` records which version's steps ran, by
idempotency key, in the process that runs the step worker.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from pydantic import BaseModel

from sagas import Saga, StepContext, StepKind

NAP = timedelta(seconds=4)
NAME = "versioned"

EFFECTS: defaultdict[str, list[int]] = defaultdict(list)
"""The version of every step run, by idempotency key."""


class Job(BaseModel):
    """A unit of work."""

    job_id: str


def _record(ctx: StepContext[Job]) -> int:
    EFFECTS[ctx.idempotency_key].append(ctx.version)
    return ctx.version


saga_v1 = Saga(NAME, input=Job, version=1)
saga_v1.step(name="record_v1", kind=StepKind.PIVOT, timeout=timedelta(minutes=2))(_record)
saga_v1.wait_for("go")
saga_v1.sleep("nap", NAP)
saga_v1.step(name="finish_v1", kind=StepKind.RETRIABLE, timeout=timedelta(minutes=2))(_record)

saga_v2 = Saga(NAME, input=Job, version=2)
saga_v2.step(name="record_v2", kind=StepKind.PIVOT, timeout=timedelta(minutes=2))(_record)
saga_v2.step(name="finish_v2", kind=StepKind.RETRIABLE, timeout=timedelta(minutes=2))(_record)

both = (saga_v1, saga_v2)
"""What the new deployment runs: versions 1 and 2."""
v2_only = [saga_v2]
"""A deployment that dropped version 1 too early (``:saga_v2`` serves both versions)."""
