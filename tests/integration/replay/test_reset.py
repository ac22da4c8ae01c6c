"""``sagas reset`` and ``sagas replay`` refuse while the processor runs; a reset processor
starts over and ends in the same states; an unreachable Kafka is one line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from processors.runner import Role, WorkerRunner
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from sagas.events import StatusRecord
from tests.integration.participants import flaky_order
from tests.integration.processors.saga_run_checks import wait_until_final
from tests.integration.replay.conftest import SAGA_REF, run_cli
from topics.lag import consumer_lag
from topics.naming import TopicNames

WIDS = [f"order-{i:03d}" for i in range(20)]


def _wait_until_quiet(kafka: KafkaSettings, names: TopicNames) -> None:
    """Until the processor has read the whole log and the log stopped growing for 2 s
    (the steps the reprocessing scheduled again have been answered)."""
    deadline = time.monotonic() + 120
    last: list[int] = []
    while True:
        lag = consumer_lag(kafka.client_config(), names.processor_group, [names.events])
        ends = [p.end_offset for p in lag]
        if all(p.lag == 0 and p.committed is not None for p in lag) and ends == last:
            return
        assert time.monotonic() < deadline, f"the reset processor did not settle: {lag}"
        last = ends
        time.sleep(2)


def _outcome(statuses: dict[str, StatusRecord]) -> dict[str, tuple[str, str | None]]:
    return {w: (s.status.value, s.failed_step) for w, s in statuses.items()}


@pytest.mark.timeout(180)
def test_reset_refuses_while_the_processor_runs_and_a_restart_ends_the_same(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    settings = ProcessorSettings(state_dir=state_dir)
    names = TopicNames(flaky_versions.name, flaky_kafka.topic_prefix)
    client = SagaClient(flaky_kafka)
    runner = WorkerRunner(
        flaky_versions, flaky_kafka, role=Role.ALL, processor_settings=settings
    ).start()
    try:
        runner.wait_ready()
        for wid in WIDS:
            order = flaky_order.order_input(wid)
            client.start(flaky_order.saga, order, workflow_id=wid, wait=False)
        first = _outcome(wait_until_final(client, WIDS, timeout=90))

        refused = run_cli(flaky_kafka, "reset", SAGA_REF, "--state-dir", str(state_dir))
        assert refused.exit_code == 1
        [line] = refused.output.strip().splitlines()
        assert line.startswith(f"Error: consumer group {names.processor_group!r} is active")
        assert "member(s): " in line
        also_refused = run_cli(flaky_kafka, "replay", SAGA_REF, "--state-dir", str(state_dir))
        assert also_refused.exit_code == 1
        assert names.processor_group in also_refused.output
        assert len(also_refused.output.strip().splitlines()) == 1
    finally:
        runner.stop()
    runner.raise_errors()
    assert any(state_dir.rglob("*.sst")) or any(state_dir.rglob("*.log"))

    dry = run_cli(flaky_kafka, "reset", SAGA_REF, "--state-dir", str(state_dir), "--dry-run",
                  "--output", "json")  # fmt: skip
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert planned["store_paths"], "the dry run names the stores it would delete"
    assert sum(planned["changelog_records"].values()) > 0
    assert all(offset is not None for offset in planned["committed"].values())

    done = run_cli(flaky_kafka, "reset", SAGA_REF, "--state-dir", str(state_dir))
    assert done.exit_code == 0, done.output
    assert not any(Path(p).exists() for p in planned["store_paths"])
    again = json.loads(
        run_cli(
            flaky_kafka,
            "reset",
            SAGA_REF,
            "--state-dir",
            str(state_dir),
            "--dry-run",
            "--output",
            "json",
        ).stdout
    )
    assert again["store_paths"] == []
    assert set(again["committed"].values()) == {0}

    rerun = WorkerRunner(
        flaky_versions, flaky_kafka, role=Role.ALL, processor_settings=settings
    ).start()
    try:
        rerun.wait_ready()
        # The statuses of the first run are there already: wait for the processor to
        # have gone through the whole log again, then compare.
        _wait_until_quiet(flaky_kafka, names)
        second = _outcome(wait_until_final(client, WIDS, timeout=90))
    finally:
        rerun.stop()
        client.close()
    rerun.raise_errors()
    assert second == first


def test_every_command_fails_fast_with_one_line_when_kafka_is_unreachable(tmp_path: Path) -> None:
    dead = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="")
    for args in (
        ["replay", SAGA_REF, "--state-dir", str(tmp_path)],
        ["replay", SAGA_REF, "--verify", "--state-dir", str(tmp_path)],
        ["replay", "--shadow", SAGA_REF],
        ["reset", SAGA_REF, "--state-dir", str(tmp_path)],
        ["history", "flaky_order", "order-1", "--output", "jsonl"],
    ):
        started = time.monotonic()
        result = run_cli(dead, *args)
        assert result.exit_code == 4, (args, result.output)  # Kafka unreachable
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, (args, result.output)
        assert lines[0].startswith("Error: "), (args, result.output)
        assert "Traceback" not in result.output
        assert time.monotonic() - started < 15, args
