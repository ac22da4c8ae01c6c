"""A long import heartbeats; its worker is SIGKILLed; another worker resumes from the details."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from examples import import_saga
from processors.runner import Role
from sagas.client.history import read_history
from sagas.events import EventType, WorkflowStatus
from tests.integration.long_running.worker_process import WorkerProcess

JOB = import_saga.ImportJob(file="big.csv", rows=200, batch=10, seconds_per_batch=0.4)


@pytest.mark.timeout(240)
def test_a_killed_worker_s_import_resumes_from_its_last_heartbeat(
    saga_runtime: Callable[..., Any], tmp_path: Path
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
        beats: list[Any] = []
        deadline = time.monotonic() + 90
        # Heartbeats go out at most every 2 s (a third of the 6 s heartbeat timeout).
        while len(beats) < 2 and time.monotonic() < deadline:
            history = read_history(runtime.kafka, import_saga.saga.name, wid)
            beats = [e for e in history if e.type is EventType.HEARTBEAT]
            time.sleep(0.3)
        assert len(beats) >= 2, (tmp_path / "first.log").read_text()
        first.kill()
    finally:
        first.stop()
    second = worker("second")
    try:
        record = runtime.client.result(import_saga.saga, wid, timeout=120)
    finally:
        second.stop()
    assert record.status is WorkflowStatus.COMPLETED, record
    history = read_history(runtime.kafka, import_saga.saga.name, wid)
    # At least the killed attempt missed its heartbeat (a command redelivered to the new
    # worker after the kill may run once more as a stale attempt first).
    timed_out = [e for e in history if e.type is EventType.STEP_TIMED_OUT]
    assert "HeartbeatTimedOut" in {e.error.type for e in timed_out if e.error}
    succeeded = next(e for e in history if e.type is EventType.STEP_SUCCEEDED and e.payload)
    resumed = import_saga.Imported.model_validate_json(succeeded.payload or "")
    assert resumed.resumed_from > 0
    earlier = {
        e.payload
        for e in history
        if e.type is EventType.HEARTBEAT and e.attempt < succeeded.attempt
    }
    assert f'{{"next_row":{resumed.resumed_from}}}' in earlier
