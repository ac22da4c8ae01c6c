"""Order sagas on the three-broker cluster while the leader of ``events`` partition 0 is
SIGKILLed and restarted 15 s later: nothing is lost and no effect is applied twice.

Topics are provisioned with no settings, so they get the cluster's replication (3,
min.insync 2): another replica takes the partition over and writes go on with two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from processors.runner import provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import quiet_client_config
from sagas.engine.versions import compile_versions
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants import flaky_order, ledger
from tests.integration.participants.ledger import LEDGER_ENV
from tests.integration.processors.saga_run_checks import (
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
    leader = None
    try:
        for wid in expected:
            client.start(flaky_order.saga, flaky_order.order_input(wid, delay_ms=20),
                         workflow_id=wid, wait=False)  # fmt: skip
        client.flush()
        _wait_for_attempts(ledger_file, total // 4, roles)
        leader = _leader_of_partition_0(admin, names.events)
        kafka_cluster.kill_node(leader)
        killed = time.monotonic()
        at_kill = ledger.count_lines(ledger_file)
        new_leader = _new_leader_of_partition_0(admin, names.events, leader, within_s=OUTAGE_S)
        failover_s = time.monotonic() - killed
        time.sleep(max(0.0, OUTAGE_S - failover_s))
        during = ledger.count_lines(ledger_file) - at_kill
        kafka_cluster.restart_node(leader)
        leader_killed, leader = leader, None
        statuses = wait_until_final(client, expected, timeout=120)
    finally:
        if leader is not None:
            kafka_cluster.restart_node(leader)
        codes = {role: process.stop() for role, process in roles.items()}
        client.close()
    assert codes == {"processor": 0, "steps": 0}
    # The sagas went on while the broker was down: another replica led partition 0.
    assert new_leader != leader_killed
    assert during > 0, "no action ran during the outage"

    config = quiet_client_config(kafka.bootstrap_servers)
    events = events_by_workflow(read_topic(config, names.events))
    effects = effects_of(ledger_file)
    # Every saga ends as predicted, its log holds each scheduled attempt once, and each
    # idempotency key saw one effect, applied in order.
    check_run(expected, statuses, events, effects, each_attempt_once=False)
    # An action whose answer the outage kept from being acknowledged runs again (at least
    # once): only actions that ran while the leader was down can, and each at most once.
    reruns = {key: runs for key, runs in effects.runs.items() if runs > 1}
    assert all(runs == 2 for runs in reruns.values()), reruns
    assert len(reruns) <= during, f"{len(reruns)} attempts ran twice: {sorted(reruns)[:10]}"
    assert read_topic(config, names.dlq) == []


def _new_leader_of_partition_0(
    admin: AdminClient, topic: str, killed: int, *, within_s: float
) -> int:
    """The broker that leads ``topic`` partition 0 once the killed one is fenced."""
    deadline = time.monotonic() + within_s
    while True:
        leader = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
        if leader > 0 and leader != killed:
            return int(leader)
        assert time.monotonic() < deadline, f"{topic}[0] found no new leader in {within_s} s"
        time.sleep(0.2)


def _wait_for_attempts(path: Path, lines: int, roles: dict[str, WorkerProcess]) -> None:
    deadline = time.monotonic() + 90
    while (count := ledger.count_lines(path)) < lines:
        for process in roles.values():
            assert process.running, f"{process.role} exited by itself, see {process.log_path}"
        assert time.monotonic() < deadline, f"the ledger stalled at {count} of {lines} attempts"
        time.sleep(0.05)
