"""Order sagas on the three-broker cluster while the leader of ``events`` partition 0 is
SIGKILLed and restarted 15 s later: nothing is lost and no effect is applied twice.

Topics are provisioned with no settings, so they get the cluster's replication (3,
min.insync 2): another replica takes the partition over and writes go on with two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from processors.runner import provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import quiet_client_config
from sagas.engine.versions import compile_versions
from sagas.events import Event, StatusRecord
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants import flaky_order, ledger
from tests.integration.participants.flaky_order import Expected
from tests.integration.participants.ledger import LEDGER_ENV
from tests.integration.processors.saga_run_checks import (
    Record,
    check_run,
    effects_of,
    events_by_workflow,
    read_topic,
    wait_until_final,
)
from topics.naming import TopicNames

pytestmark = pytest.mark.cluster

SAGAS = 300
SAGA_REF = "tests.integration.participants.flaky_order:saga"
OUTAGE_S = 15.0


def _leader_of_partition_0(admin: AdminClient, topic: str) -> int:
    leader = admin.list_topics(topic, timeout=30).topics[topic].partitions[0].leader
    assert leader > 0, f"{topic}[0] has no leader"
    return int(leader)


@dataclass
class _Run:
    """What one run with a broker killed saw."""

    expected: dict[str, Expected]
    statuses: dict[str, StatusRecord]
    killed: int
    during: int
    """Actions that ran while the broker was down."""
    events: dict[str, list[Event]]
    effects: ledger.LedgerView
    dlq: list[Record]


def _run_with_a_broker_killed(
    cluster: LocalKafka, kafka: KafkaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    choose: Callable[[AdminClient, TopicNames], int],
) -> _Run:  # fmt: skip
    """Order sagas under way while the broker ``choose`` names is SIGKILLed for 15 s."""
    provision(compile_versions(flaky_order.saga), kafka)
    ledger_file = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(LEDGER_ENV, str(ledger_file))
    names = TopicNames(flaky_order.SAGA_NAME, kafka.topic_prefix)
    admin = AdminClient(quiet_client_config(kafka.bootstrap_servers))
    expected = {wid: flaky_order.predict(wid) for wid in (f"order-{i:04d}" for i in range(SAGAS))}
    total = sum(len(e.schedule) for e in expected.values())
    roles = {
        role: WorkerProcess(SAGA_REF, kafka, role=role, state_dir=tmp_path / "state",
                            log_path=tmp_path / f"{role}.log")
        for role in ("processor", "steps")
    }  # fmt: skip
    for process in roles.values():
        process.start()
    client = SagaClient(kafka)
    down = None
    try:
        for wid in expected:
            client.start(flaky_order.saga, flaky_order.order_input(wid, delay_ms=20),
                         workflow_id=wid, wait=False)  # fmt: skip
        client.flush()
        _wait_for_attempts(ledger_file, total // 4, roles)
        down = choose(admin, names)
        cluster.kill_node(down)
        at_kill = ledger.count_lines(ledger_file)
        time.sleep(OUTAGE_S)
        during = ledger.count_lines(ledger_file) - at_kill
        cluster.restart_node(down)
        killed, down = down, None
        statuses = wait_until_final(client, expected, timeout=120)
    finally:
        if down is not None:
            cluster.restart_node(down)
        codes = {role: process.stop() for role, process in roles.items()}
        client.close()
    assert codes == {"processor": 0, "steps": 0}, f"see the logs in {tmp_path}"
    config = quiet_client_config(kafka.bootstrap_servers)
    return _Run(
        expected=expected,
        statuses=statuses,
        killed=killed,
        during=during,
        events=events_by_workflow(read_topic(config, names.events)),
        effects=effects_of(ledger_file),
        dlq=read_topic(config, names.dlq),
    )


def _check_nothing_lost_and_no_effect_twice(run: _Run) -> None:
    # Every saga ends as predicted, its log holds each scheduled attempt once, and each
    # idempotency key saw one effect, applied in order.
    check_run(run.expected, run.statuses, run.events, run.effects, each_attempt_once=False)
    # An action whose answer the outage kept from being acknowledged runs again (at least
    # once): only actions that ran while the broker was down can, and each at most once.
    reruns = {key: runs for key, runs in run.effects.runs.items() if runs > 1}
    assert all(runs == 2 for runs in reruns.values()), reruns
    assert len(reruns) <= run.during, f"{len(reruns)} attempts ran twice: {sorted(reruns)[:10]}"
    assert run.dlq == []


@pytest.mark.timeout(240)
def test_killing_the_leader_of_events_partition_0_loses_no_saga_and_no_effect_twice(
    kafka_cluster: LocalKafka,
    tmp_path: Path,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=kafka_cluster.bootstrap_servers, topic_prefix=unique_name("") + "."
    )
    new_leaders: list[int] = []

    def leader_of_partition_0(admin: AdminClient, names: TopicNames) -> int:
        leader = _leader_of_partition_0(admin, names.events)

        # Watch the failover from another thread while the test sleeps through the outage.
        def watch() -> None:
            found = _new_leader_of_partition_0(admin, names.events, leader, within_s=OUTAGE_S)
            if found is not None:
                new_leaders.append(found)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        return leader

    run = _run_with_a_broker_killed(
        kafka_cluster, kafka, tmp_path, monkeypatch, leader_of_partition_0
    )
    # The sagas went on while the broker was down: another replica led partition 0.
    assert new_leaders, "no other broker took partition 0 over"
    assert new_leaders[0] != run.killed
    assert run.during > 0, "no action ran during the outage"
    _check_nothing_lost_and_no_effect_twice(run)


@pytest.mark.timeout(240)
def test_killing_the_processors_group_coordinator_loses_no_saga_and_freezes_nothing(
    kafka_cluster: LocalKafka,
    tmp_path: Path,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The coordinator of the processor's group dies while transactions add offsets to it:
    librdkafka may leave that call blocked; the processor gives it up and starts over."""
    kafka = KafkaSettings(
        bootstrap_servers=kafka_cluster.bootstrap_servers, topic_prefix=unique_name("") + "."
    )

    def coordinator(admin: AdminClient, names: TopicNames) -> int:
        return _coordinator_of(admin, names.processor_group)

    run = _run_with_a_broker_killed(kafka_cluster, kafka, tmp_path, monkeypatch, coordinator)
    _check_nothing_lost_and_no_effect_twice(run)


def _coordinator_of(admin: AdminClient, group: str) -> int:
    described = admin.describe_consumer_groups([group], request_timeout=30)[group].result(30)
    node = described.coordinator
    assert node is not None, f"{group} has no coordinator"
    assert node.id >= 0, f"{group} has no coordinator"
    return int(node.id)


def _new_leader_of_partition_0(
    admin: AdminClient, topic: str, killed: int, *, within_s: float
) -> int | None:
    """The broker that leads ``topic`` partition 0 once the killed one is fenced, or
    ``None`` if none does within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            metadata = admin.list_topics(topic, timeout=2)
        except KafkaException:
            continue  # asked the dead broker: ask again
        leader = metadata.topics[topic].partitions[0].leader
        if leader > 0 and leader != killed:
            return int(leader)
        time.sleep(0.2)
    return None


def _wait_for_attempts(path: Path, lines: int, roles: dict[str, WorkerProcess]) -> None:
    deadline = time.monotonic() + 90
    while (count := ledger.count_lines(path)) < lines:
        for process in roles.values():
            assert process.running, f"{process.role} exited by itself, see {process.log_path}"
        assert time.monotonic() < deadline, f"the ledger stalled at {count} of {lines} attempts"
        time.sleep(0.05)
