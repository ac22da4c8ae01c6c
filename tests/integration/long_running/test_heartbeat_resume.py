"""A long import heartbeats; its worker is SIGKILLed; another worker resumes from the details."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from examples import import_saga
from processors.runner import Role
from sagas.client.history import read_history
from sagas.events import Event, EventType, Origin, WorkflowStatus
from tests.integration.long_running.conftest import Runtime
from tests.integration.long_running.worker_process import WorkerProcess

JOB = import_saga.ImportJob(file="big.csv", rows=200, batch=10, seconds_per_batch=0.4)


def _history_until(
    runtime: Runtime, wid: str, done: Callable[[list[Event]], bool], seconds: float
) -> list[Event]:
    """The workflow's log once ``done`` holds for it (read again every 0.3 s)."""
    deadline = time.monotonic() + seconds
    while True:
        history = read_history(runtime.kafka, import_saga.saga.name, wid)
        if done(history) or time.monotonic() > deadline:
            return history
        time.sleep(0.3)


def _beats_with_details(history: list[Event]) -> list[Event]:
    return [e for e in history if e.type is EventType.HEARTBEAT and e.payload is not None]


def _timed_out(history: list[Event]) -> list[Event]:
    return [e for e in history if e.type is EventType.STEP_TIMED_OUT]


@pytest.mark.timeout(60)
def test_a_killed_worker_s_import_resumes_from_its_last_heartbeat(
    saga_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = saga_runtime(import_saga.saga, start_worker=False)
    runtime.run_worker(runtime.versions, tmp_path / "processor", role=Role.PROCESSOR)

    def worker(name: str) -> WorkerProcess:
        process = WorkerProcess(
            "examples.import_saga:saga", runtime.kafka, role=Role.STEPS.value,
            state_dir=tmp_path / name, log_path=tmp_path / f"{name}.log",
        )  # fmt: skip
        process.start()
        return process

    first = worker("first")
    try:
        wid = runtime.client.start(import_saga.saga, JOB, workflow_id="import-1")
        # The worker coalesces beats (one heartbeat per 2 s, a third of the 6 s timeout):
        # kill it only once details of its own are in the log, not merely asked for.
        history = _history_until(runtime, wid, lambda h: len(_beats_with_details(h)) >= 2, 30)
        assert len(_beats_with_details(history)) >= 2, (tmp_path / "first.log").read_text()
        first.kill()
    finally:
        first.stop()
    # The other worker starts once the saga has timed the attempt out, so that what it gets
    # is the command of the next attempt, carrying the details the log held at the time out
    # (the killed attempt's command, redelivered to it as well, is stale by then).
    history = _history_until(runtime, wid, lambda h: bool(_timed_out(h)), 20)
    timed_out = _timed_out(history)
    assert [(e.attempt, e.error and e.error.type) for e in timed_out] == [
        (1, "HeartbeatTimedOut")
    ], history
    cut = history.index(timed_out[0])
    recorded = _beats_with_details(history[:cut])[-1]
    assert recorded.attempt == 1
    assert all(e.attempt == 1 for e in _beats_with_details(history[:cut]))
    resume_at = json.loads(recorded.payload or "")["next_row"]
    assert 0 < resume_at < JOB.rows

    second = worker("second")
    try:
        record = runtime.client.result(import_saga.saga, wid, timeout=30)
    finally:
        second.stop()
    assert record.status is WorkflowStatus.COMPLETED, record
    result = import_saga.Imported.model_validate(json.loads(record.result or "")["import_rows"])
    assert result.resumed_from == resume_at
    # Rows are counted in the worker's process: at least those from the resume on.
    assert result.rows >= JOB.rows - resume_at
    history = read_history(runtime.kafka, import_saga.saga.name, wid)
    accepted = [
        e
        for e in history
        if e.type is EventType.STEP_SUCCEEDED
        and e.payload is not None
        and import_saga.Imported.model_validate_json(e.payload) == result
    ]
    assert [e.attempt for e in accepted] == [2], history
    # The killed attempt's command, redelivered to the other worker, is stale once attempt
    # 2's command is there: skipped, or ended at its next heartbeat, never run to the end.
    stale = [e for e in history if e.origin is Origin.WORKER and e.attempt == 1]
    assert not [e for e in stale if e.type is EventType.STEP_SUCCEEDED], history
    assert {e.error.type for e in stale if e.error} <= {"AttemptSupersededError"}, history
