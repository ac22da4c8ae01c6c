"""A record that could not be applied waits in the DLQ until ``sagas dlq redrive`` puts it
back: here a start for a version not deployed yet, redriven once it is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel

from processors.runner import WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas import Saga, StepContext, StepKind
from sagas.client import SagaClient
from sagas.client.dead_letters import DeadLetter, read_dead_letters
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import WorkflowStatus


class Ticket(BaseModel):
    ticket_id: str


v1 = Saga("redrive_demo", input=Ticket, version=1)
v2 = Saga("redrive_demo", input=Ticket, version=2)


@v1.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
async def open_ticket(ctx: StepContext[Ticket]) -> str:
    return f"v1-{ctx.input.ticket_id}"


# Version 2 waits for a nudge: the one sent while the workflow was parked, which only works
# if the redriven start is applied before the inputs held meanwhile.
v2.wait_for("nudged", signal="nudge", timeout=timedelta(minutes=5))


@v2.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
async def open_ticket_v2(ctx: StepContext[Ticket]) -> str:
    return f"v2-{ctx.input.ticket_id}"


def runner(versions: SagaVersions, kafka: KafkaSettings, state_dir: Path) -> WorkerRunner:
    settings = ProcessorSettings(state_dir=state_dir)
    return WorkerRunner(versions, kafka, processor_settings=settings).start()


def run_cli(kafka: KafkaSettings, *args: str) -> str:
    env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "SAGAS_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "sagas.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_start_for_an_undeployed_version_is_redriven_after_the_deploy(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("r") + ".")
    both = compile_versions([v1, v2])
    provision(both, kafka)
    old = runner(compile_versions(v1), kafka, tmp_path / "a")
    with SagaClient(kafka) as client:
        try:
            old.wait_ready()
            ahead = client.start("redrive_demo", {"ticket_id": "t1"}, version=2)
            normal = client.start("redrive_demo", {"ticket_id": "t2"})
            assert client.result("redrive_demo", normal, timeout=60).version == 1
            # The v2 start is dead-lettered and its workflow parked; a signal for it is held.
            client.signal("redrive_demo", ahead, "nudge", {"n": 1}, check=False)
            letters = _wait_for_letters(kafka, 1)
        finally:
            old.stop()
        old.raise_errors()
        assert letters[0].workflow_id == ahead
        assert letters[0].reason == "unknown_version"
        assert "version 2" in letters[0].exception
        assert f"workflow={ahead}" in run_cli(kafka, "dlq", "list", "redrive_demo")

        new = runner(both, kafka, tmp_path / "b")
        try:
            new.wait_ready()
            assert "redrove 1 record(s)" in run_cli(
                kafka, "dlq", "redrive", "redrive_demo", "--workflow", ahead
            )
            record = client.result("redrive_demo", ahead, timeout=60)
        finally:
            new.stop()
        new.raise_errors()
    assert record.status is WorkflowStatus.COMPLETED
    assert record.version == 2
    assert not record.parked
    assert record.result is not None
    assert "v2-t1" in record.result
    assert len(read_dead_letters(kafka, "redrive_demo")) == 1  # nothing new went wrong


def _wait_for_letters(kafka: KafkaSettings, count: int) -> list[DeadLetter]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        letters = read_dead_letters(kafka, "redrive_demo")
        if len(letters) >= count:
            return letters
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} dead letters after 60 s")
