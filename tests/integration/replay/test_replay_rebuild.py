"""``sagas replay`` rebuilds a lost state directory and changelog from the event log alone."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from processors.runner import Role, WorkerRunner
from processors.settings import ProcessorSettings
from processors.store.keys import TIMER_PREFIX
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
from tests.integration.replay.conftest import (
    SAGA_REF,
    recreate_changelog,
    run_cli,
    stored_states,
)
from topics.naming import TopicNames

SAGAS = 200
INDEX_PREFIX = b"i"
"""Every key of the search index (start, status and attribute entries)."""


@pytest.mark.timeout(240)
def test_replay_rebuilds_identical_states_and_the_sagas_in_flight_complete(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    expected = {wid: flaky_order.predict(wid) for wid in (f"order-{i:04d}" for i in range(SAGAS))}
    total = sum(len(e.schedule) for e in expected.values())
    state_dir = tmp_path / "state"
    settings = ProcessorSettings(state_dir=state_dir)
    steps = WorkerRunner(flaky_versions, flaky_kafka, role=Role.STEPS).start()
    first = WorkerRunner(
        flaky_versions, flaky_kafka, role=Role.PROCESSOR, processor_settings=settings
    ).start()
    runners = [steps, first]
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
        steps.stop()
        steps.raise_errors()
        statuses = client.statuses(flaky_order.SAGA_NAME)
        ended = sum(1 for s in statuses.values() if s.status.is_final)
        assert 0 < ended < SAGAS, f"{ended} of {SAGAS} ended: the stop was not mid-run"
        before = stored_states(flaky_versions, flaky_kafka, state_dir)
        assert len(before) > SAGAS // 2
        # The search index and the timers (retention's included), which list and expiry read.
        indexed = stored_states(flaky_versions, flaky_kafka, state_dir, INDEX_PREFIX)
        timers = stored_states(flaky_versions, flaky_kafka, state_dir, TIMER_PREFIX)
        assert len(indexed) > len(before)
        lines_before = ledger.count_lines(ledger_file)

        shutil.rmtree(state_dir)
        recreate_changelog(flaky_versions, flaky_kafka)
        result = run_cli(
            flaky_kafka, "replay", SAGA_REF, "--state-dir", str(state_dir), "--output", "json"
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["events"] > 0
        assert sum(p["workflows"] for p in summary["partitions"]) == len(before)
        assert stored_states(flaky_versions, flaky_kafka, state_dir) == before
        assert stored_states(flaky_versions, flaky_kafka, state_dir, INDEX_PREFIX) == indexed
        assert stored_states(flaky_versions, flaky_kafka, state_dir, TIMER_PREFIX) == timers
        assert ledger.count_lines(ledger_file) == lines_before, "replay ran a step"

        verify = run_cli(flaky_kafka, "replay", SAGA_REF, "--verify", "--state-dir", str(state_dir))
        assert verify.exit_code == 0, verify.output
        assert f"0 of {len(before)} workflow(s) differ" in verify.stdout
        # The changelog was written to match: a restore from it alone agrees too.
        from_changelog = run_cli(
            flaky_kafka, "replay", SAGA_REF, "--verify", "--state-dir", str(tmp_path / "none")
        )
        assert from_changelog.exit_code == 0, from_changelog.output

        steps = WorkerRunner(flaky_versions, flaky_kafka, role=Role.STEPS).start()
        second = WorkerRunner(
            flaky_versions, flaky_kafka, role=Role.PROCESSOR, processor_settings=settings
        ).start()
        runners += [steps, second]
        second.wait_ready()
        statuses = wait_until_final(client, expected, timeout=150)
    finally:
        for runner in runners:
            runner.stop()
        client.close()
    for runner in runners:
        runner.raise_errors()

    config = flaky_kafka.client_config()
    names = TopicNames(flaky_order.SAGA_NAME, flaky_kafka.topic_prefix)
    events = events_by_workflow(read_topic(config, names.events))
    # Every attempt ran exactly once across both runs: nothing was run again.
    check_run(expected, statuses, events, effects_of(ledger_file), each_attempt_once=True)
    assert read_topic(config, names.dlq) == []


def test_verify_reports_a_workflow_whose_live_state_differs(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    settings = ProcessorSettings(state_dir=state_dir)
    runner = WorkerRunner(
        flaky_versions, flaky_kafka, role=Role.ALL, processor_settings=settings
    ).start()
    client = SagaClient(flaky_kafka)
    wids = [f"order-{i}" for i in range(5)]
    try:
        runner.wait_ready()
        for wid in wids:
            client.start(
                flaky_order.saga, flaky_order.order_input(wid), workflow_id=wid, wait=False
            )
        wait_until_final(client, wids, timeout=60)
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()
    from processors.store.keys import workflow_key
    from processors.store.rocksdb import RocksDBStore
    from sagas.engine.state import WorkflowState
    from topics.partitioning import partition_for

    names = TopicNames(flaky_order.SAGA_NAME, flaky_kafka.topic_prefix)
    store = RocksDBStore(state_dir, names.processor_group, names.events)
    partition = partition_for(wids[0].encode(), 3)
    local = store.partition(partition)
    data = local.get(workflow_key(wids[0]))
    assert data is not None
    state = WorkflowState.from_bytes(data)
    state.cursor += 1
    local.write({workflow_key(wids[0]): state.to_bytes()})
    store.close()

    result = run_cli(flaky_kafka, "replay", SAGA_REF, "--verify", "--state-dir", str(state_dir))
    assert result.exit_code == 1, result.output
    assert f"{wids[0]} (partition {partition}): cursor" in result.stdout
    assert "1 of 5 workflow(s) differ" in result.stdout
