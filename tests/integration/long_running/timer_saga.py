"""A saga that sleeps for the number of seconds its input asks, then records that it woke.

A sleep's duration is a constant of the definition, so the saga declares one sleep per
length in :data:`SLEEP_SECONDS` and a branch picks the one the input names. ``FIRED``
collects the wake-up step's runs (idempotency key -> wall-clock seconds of each run) in
the process that runs the step worker.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta

from pydantic import BaseModel, Field

from sagas import Saga, StepContext, StepKind, WorkflowView

SLEEP_SECONDS = range(1, 61)
"""The sleep lengths a workflow can ask for, in seconds."""

FIRED: defaultdict[str, list[float]] = defaultdict(list)
"""Every run of the wake-up step, by idempotency key; more than one would be a double fire."""


class Nap(BaseModel):
    """How long a workflow sleeps."""

    seconds: int = Field(ge=SLEEP_SECONDS.start, lt=SLEEP_SECONDS.stop)


def sleep_name(seconds: int) -> str:
    """The name of the sleep node that lasts ``seconds``."""
    return f"sleep_{seconds}s"


saga = Saga("napper", input=Nap, version=1)


@saga.branch(targets=tuple(sleep_name(s) for s in SLEEP_SECONDS))
def pick_sleep(view: WorkflowView[Nap]) -> str:
    """Go to the sleep of the asked length."""
    return sleep_name(view.input.seconds)


for _seconds in SLEEP_SECONDS:
    saga.sleep(sleep_name(_seconds), timedelta(seconds=_seconds), then="woke")


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=5))
def woke(ctx: StepContext[Nap]) -> float:
    """Record when the workflow woke up."""
    now = time.time()
    FIRED[ctx.idempotency_key].append(now)
    return now
