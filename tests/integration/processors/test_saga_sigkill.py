"""The 1,000 flaky order sagas with the saga processor and the step worker SIGKILLed
mid-run, six times in all, each restarted under the same instance id (and, for the
processor, the same state directory) as a supervisor would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sagas.client import SagaClient
from sagas.config import KafkaSettings
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants import flaky_order, ledger
from tests.integration.processors.saga_run_checks import (
    check_run,
    effects_of,
    events_by_workflow,
    read_topic,
    wait_until_final,
)
from topics.naming import TopicNames

SAGAS = 1000
SAGA_REF = "tests.integration.participants.flaky_order:saga"
KILLS = (
    (0.10, ("steps",)),
    (0.20, ("processor",)),
    (0.35, ("steps",)),
    (0.50, ("processor",)),
    (0.65, ("processor", "steps")),
    (0.80, ("processor",)),
)
"""When (the share of all attempts already in the ledger) to kill which processes."""


def _wait_for_progress(path: Path, lines: int, processes: list[WorkerProcess]) -> int:
    """Block until the ledger holds ``lines`` attempts; fail if a worker died on its own."""
    deadline = time.monotonic() + 90
    while (count := ledger.count_lines(path)) < lines:
        for process in processes:
            assert process.running, f"{process.role} exited by itself, see {process.log_path}"
        assert time.monotonic() < deadline, f"the ledger stalled at {count} of {lines} attempts"
        time.sleep(0.02)
    return count


@pytest.mark.timeout(300)
def test_sigkilled_processor_and_worker_lose_no_saga_and_apply_no_effect_twice(
    flaky_kafka: KafkaSettings,
    ledger_file: Path,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    """Same outcomes as without crashes; every saga ends; each effect once per key."""
    expected = {wid: flaky_order.predict(wid) for wid in (f"order-{i:04d}" for i in range(SAGAS))}
    total = sum(len(e.schedule) for e in expected.values())
    roles = {
        role: WorkerProcess(
            SAGA_REF,
            flaky_kafka,
            role=role,
            state_dir=tmp_path / "state",
            instance_id=unique_name(role),
            log_path=tmp_path / f"{role}.log",
        )
        for role in ("processor", "steps")
    }
    for process in roles.values():
        process.start()
    client = SagaClient(flaky_kafka)
    try:
        for wid in expected:
            # Every step waits a little, so the run lasts long enough to be killed in.
            order = flaky_order.order_input(wid, delay_ms=10)
            client.start(flaky_order.saga, order, workflow_id=wid, wait=False)
        client.flush()
        for share, targets in KILLS:
            seen = _wait_for_progress(ledger_file, int(total * share), list(roles.values()))
            assert seen < total, f"the run finished before the kill planned at {share:.0%}"
            for role in targets:
                roles[role].kill()
            for role in targets:
                roles[role].start()
        statuses = wait_until_final(client, expected, timeout=150)
    finally:
        codes = {role: process.stop() for role, process in roles.items()}
        client.close()
    assert codes == {"processor": 0, "steps": 0}

    config = flaky_kafka.client_config()
    names = TopicNames(flaky_order.SAGA_NAME, flaky_kafka.topic_prefix)
    events = events_by_workflow(read_topic(config, names.events))
    effects = effects_of(ledger_file)
    check_run(expected, statuses, events, effects, each_attempt_once=False)
    # The kills did interrupt actions in flight: some ran again, and the checks above
    # found their effects applied once per key all the same.
    assert any(runs > 1 for runs in effects.applications.values())
    assert read_topic(config, names.dlq) == []
