"""Versions side by side: version-1 workflows in flight when version 2 is deployed finish on
version 1, new starts use version 2, and a worker lacking version 1 refuses to start."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from processors.version_check import check_versions, missing_versions
from sagas.client import SagaClient
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import CommandKind, EventType, WorkflowStatus, idempotency_key
from tests.integration.long_running import versioned_saga
from tests.integration.long_running.conftest import Runtime

_REPO = Path(__file__).resolve().parents[3]


def _wait_until_waiting(kafka: KafkaSettings, wids: list[str]) -> None:
    # A wait without a timeout has no timer, so the status record does not name it: the
    # event log says when the wait began.
    deadline = time.monotonic() + 60
    for wid in wids:
        while not any(
            e.type is EventType.WAIT_STARTED for e in read_history(kafka, versioned_saga.NAME, wid)
        ):
            assert time.monotonic() < deadline, f"{wid} never reached its wait"
            time.sleep(0.2)


def _wait_until_sleeping(client: SagaClient, wid: str) -> None:
    deadline = time.monotonic() + 60
    while "nap" not in client.status(versioned_saga.NAME, wid).current_steps:
        assert time.monotonic() < deadline, client.status(versioned_saga.NAME, wid)
        time.sleep(0.2)


def test_in_flight_version_1_finishes_on_it_after_version_2_is_deployed(
    saga_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = saga_runtime(versioned_saga.saga_v1)
    client, kafka = runtime.client, runtime.kafka
    versioned_saga.EFFECTS.clear()
    waiting = [client.start(versioned_saga.saga_v1, versioned_saga.Job(job_id=f"w{i}"),
                            workflow_id=f"waiting-{i}") for i in range(2)]  # fmt: skip
    sleeping = client.start(
        versioned_saga.saga_v1, versioned_saga.Job(job_id="s"), workflow_id="sleeping"
    )
    _wait_until_waiting(kafka, [*waiting, sleeping])
    client.signal(versioned_saga.NAME, sleeping, "go")
    _wait_until_sleeping(client, sleeping)
    # Version 1's only worker goes away with three workflows in flight on it.
    runtime.runners.pop().stop()

    v2_only = compile_versions(versioned_saga.saga_v2)
    assert missing_versions(v2_only, kafka) == {1: 3}
    worker = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "worker",
         "tests.integration.long_running.versioned_saga:v2_only", "--role", "processor",
         "--state-dir", str(tmp_path / "v2-only"), "--no-create-topics",
         "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix],
        cwd=_REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert worker.returncode != 0, worker.stderr
    assert "3 workflow(s) on version 1 still in flight" in worker.stderr, worker.stderr
    assert "runs only version(s) 2" in worker.stderr, worker.stderr
    # Told to start anyway, it warns and runs (the steps role: a version-2-only processor
    # would park the version-1 workflows).
    with subprocess.Popen(
        [sys.executable, "-m", "sagas.cli", "worker",
         "tests.integration.long_running.versioned_saga:v2_only", "--role", "steps",
         "--allow-missing-versions", "--no-create-topics",
         "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix],
        cwd=_REPO, stderr=subprocess.PIPE, text=True,
    ) as forced:  # fmt: skip
        try:
            assert forced.stderr is not None
            said: list[str] = []
            while len(said) < 50 and not any("starting saga" in line for line in said):
                said.append(forced.stderr.readline())
        finally:
            forced.terminate()
            forced.wait(60)
    warned = [i for i, line in enumerate(said) if "3 workflow(s) on version 1 still in" in line]
    started = [i for i, line in enumerate(said) if "starting saga 'versioned' (versions 2)" in line]
    assert warned, said
    assert started, said
    assert warned[0] < started[0], said
    assert " WARNING sagas.worker: " in said[warned[0]], said
    assert "as steps" in said[started[0]], said

    both = compile_versions(versioned_saga.both)
    check_versions(both, kafka)  # has every version in flight: no error
    runtime.run_worker(both, tmp_path / "v1-and-v2")
    for wid in waiting:
        client.signal(versioned_saga.NAME, wid, "go")
    newer = client.start(both, versioned_saga.Job(job_id="n"), workflow_id="newer")

    for wid in [*waiting, sleeping]:
        record = client.result(versioned_saga.NAME, wid, timeout=60)
        assert record.status is WorkflowStatus.COMPLETED, record
        assert record.version == 1, record
        assert versioned_saga.EFFECTS[idempotency_key(wid, "finish_v1", CommandKind.ACTION)] == [1]
    record = client.result(versioned_saga.NAME, newer, timeout=60)
    assert record.status is WorkflowStatus.COMPLETED, record
    assert record.version == 2, record
    assert versioned_saga.EFFECTS[idempotency_key(newer, "finish_v2", CommandKind.ACTION)] == [2]
    assert missing_versions(v2_only, kafka) == {}
