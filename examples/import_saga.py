"""A long import: one step reads many rows, heartbeats where it is, and resumes there.

``import_rows`` says after each batch of rows how far it got (``ctx.heartbeat``). If its
worker dies, no heartbeat comes for ``heartbeat_timeout``, the attempt counts as failed,
and the next attempt, on any worker, starts from the last row reported
(``ctx.heartbeat_details``) instead of from the first. ``IMPORTED`` stands in for the
table the rows land in, by idempotency key and row number, so a row done twice lands once.
"""

from __future__ import annotations

import time
from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind

IMPORTED: dict[str, set[int]] = {}
"""Rows imported, by idempotency key; a stand-in for the destination table."""

STARTS: list[tuple[int, int]] = []
"""(attempt, first row) of every run of ``import_rows``: where each attempt began."""


class ImportJob(BaseModel):
    """A file of ``rows`` rows to import, ``batch`` rows at a time."""

    file: str
    rows: int
    batch: int = 100
    seconds_per_batch: float = 0.0
    """Time a batch takes (0 in unit tests; the broker tests make the job long)."""


class Imported(BaseModel):
    """What the import did."""

    rows: int
    resumed_from: int


saga = Saga("import", input=ImportJob, version=1)


@saga.step(
    kind=StepKind.RETRIABLE,
    retry=Retry(max_attempts=5, initial_interval=timedelta(seconds=1)),
    timeout=lambda view: timedelta(seconds=60 + view.input.rows * view.input.seconds_per_batch),
    heartbeat_timeout=timedelta(seconds=6),
)
def import_rows(ctx: StepContext[ImportJob]) -> Imported:
    """Import the file's rows from where the last attempt got to."""
    job = ctx.input
    start = int(ctx.heartbeat_details["next_row"]) if ctx.heartbeat_details else 0
    STARTS.append((ctx.attempt, start))
    done = IMPORTED.setdefault(ctx.idempotency_key, set())
    for first in range(start, job.rows, job.batch):
        if job.seconds_per_batch:
            time.sleep(job.seconds_per_batch)
        done.update(range(first, min(first + job.batch, job.rows)))
        ctx.heartbeat({"next_row": min(first + job.batch, job.rows)})
    return Imported(rows=len(done), resumed_from=start)
