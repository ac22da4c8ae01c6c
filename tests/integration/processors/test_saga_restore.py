"""A saga processor whose state directory is lost rebuilds it from the changelog."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from processors.runner import Role, WorkerRunner
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from tests.integration.participants import flaky_order, ledger
from tests.integration.processors.saga_run_checks import (
    check_run,
    effects_of,
    events_by_workflow,
    read_topic,
    wait_until_final,
)
from topics.naming import TopicNames

SAGAS = 300


@pytest.mark.timeout(180)
def test_workflows_in_flight_complete_after_the_state_dir_is_deleted(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    """Stop the processor mid-run, delete its RocksDB state, start a new one: all end right."""
    expected = {wid: flaky_order.predict(wid) for wid in (f"order-{i:04d}" for i in range(SAGAS))}
    total = sum(len(e.schedule) for e in expected.values())
    state_dir = tmp_path / "state"
    settings = ProcessorSettings(state_dir=state_dir)
    steps = WorkerRunner(flaky_versions, flaky_kafka, role=Role.STEPS).start()
    first = WorkerRunner(
        flaky_versions, flaky_kafka, role=Role.PROCESSOR, processor_settings=settings
    ).start()
    second: WorkerRunner | None = None
    client = SagaClient(flaky_kafka)
    try:
        steps.wait_ready()
        first.wait_ready()
        for wid in expected:
            order = flaky_order.order_input(wid, delay_ms=20)
            client.start(flaky_order.saga, order, workflow_id=wid, wait=False)
        client.flush()
        deadline = time.monotonic() + 60
        while ledger.count_lines(ledger_file) < total * 0.3:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        first.stop()
        first.raise_errors()
        statuses = client.statuses(flaky_order.SAGA_NAME)
        ended = sum(1 for s in statuses.values() if s.status.is_final)
        assert 0 < ended < SAGAS, f"{ended} of {SAGAS} ended: the stop was not mid-run"
        assert any(state_dir.rglob("*.sst")) or any(state_dir.rglob("*.log"))
        shutil.rmtree(state_dir)

        second = WorkerRunner(
            flaky_versions, flaky_kafka, role=Role.PROCESSOR, processor_settings=settings
        ).start()
        second.wait_ready()
        statuses = wait_until_final(client, expected, timeout=120)
    finally:
        for runner in (first, second, steps):
            if runner is not None:
                runner.stop()
        client.close()
    steps.raise_errors()
    assert second is not None
    second.raise_errors()

    config = flaky_kafka.client_config()
    names = TopicNames(flaky_order.SAGA_NAME, flaky_kafka.topic_prefix)
    events = events_by_workflow(read_topic(config, names.events))
    check_run(expected, statuses, events, effects_of(ledger_file), each_attempt_once=True)
    assert read_topic(config, names.dlq) == []
