"""Steps declared ``executor="process"`` on the real broker: the step worker runs them in
processes of its own, answers their errors as it does a thread's, and kills the process of
an attempt past its deadline, so the retry runs in a fresh one while the old never answers."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind
from sagas.client.history import read_history
from sagas.events import EventType, WorkflowStatus
from tests.integration.long_running.conftest import Runtime

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]


class Batch(BaseModel):
    batch_id: str
    marks: str
    """A directory where each attempt leaves a file named by its attempt and process id."""


saga = Saga("crunch-proc", input=Batch)


@saga.step
def reserve(ctx: StepContext[Batch]) -> str:
    return "reserved"


@reserve.compensation
def release(ctx: StepContext[Batch]) -> None:
    return None


@saga.step(
    kind=StepKind.PIVOT,
    executor="process",
    timeout=timedelta(seconds=2),
    retry=Retry(max_attempts=3, initial_interval=timedelta(milliseconds=200)),
)
def crunch(ctx: StepContext[Batch]) -> dict[str, int]:
    Path(ctx.input.marks, f"{ctx.attempt}-{os.getpid()}").touch()
    if ctx.input.batch_id.startswith("bad"):
        raise NonRetryableError(f"batch {ctx.input.batch_id} has no rows")
    if ctx.attempt == 1:
        time.sleep(60)  # CPU-bound work that would outlive its deadline in a thread
    return {"total": sum(range(100_000)), "pid": os.getpid()}


def _marks(directory: Path) -> dict[int, int]:
    return {int(a): int(p) for a, p in (m.name.split("-") for m in directory.iterdir())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_process_step_killed_at_its_deadline_retries_in_a_fresh_process(
    saga_runtime: Callable[..., Runtime], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = saga_runtime(saga)
    caplog.set_level(logging.WARNING, logger="processors.step_worker")
    marks = tmp_path / "slow"
    marks.mkdir()
    wid = runtime.client.start(saga, Batch(batch_id="b-1", marks=str(marks)), workflow_id="p-1")
    record = runtime.client.result(saga, wid, timeout=30)
    assert record.status is WorkflowStatus.COMPLETED, record
    ran = _marks(marks)
    assert sorted(ran) == [1, 2], ran
    assert ran[1] != ran[2]
    assert os.getpid() not in ran.values()
    assert not _alive(ran[1]), "the process of the attempt past its deadline still runs"
    assert any("killed the process of" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    history = read_history(runtime.kafka, saga.name, wid)
    succeeded = [e for e in history if e.type is EventType.STEP_SUCCEEDED and e.step == "crunch"]
    assert [e.attempt for e in succeeded] == [2]
    ended_first = {e.type for e in history if e.step == "crunch" and e.attempt == 1}
    assert ended_first & {EventType.STEP_TIMED_OUT, EventType.STEP_FAILED}, ended_first


def test_a_process_step_that_raises_answers_as_a_thread_would(
    saga_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = saga_runtime(saga)
    marks = tmp_path / "bad"
    marks.mkdir()
    wid = runtime.client.start(saga, Batch(batch_id="bad-1", marks=str(marks)), workflow_id="p-2")
    record = runtime.client.result(saga, wid, timeout=30)
    assert record.status is WorkflowStatus.COMPENSATED, record
    assert record.error is not None
    assert record.error.type == "NonRetryableError", record.error
    assert "batch bad-1 has no rows" in record.error.message
    assert sorted(_marks(marks)) == [1]  # not retried
    history = read_history(runtime.kafka, saga.name, wid)
    assert [e.step for e in history if e.type is EventType.COMPENSATION_SUCCEEDED] == ["reserve"]
