"""On the real three-broker cluster, topics made with no settings get three replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ResourceType,
)

from processors.runner import provision
from sagas.config import KafkaSettings
from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import quiet_client_config
from sagas.engine.versions import compile_versions
from tests.integration.participants import flaky_order

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]

_REPO = Path(__file__).resolve().parents[3]
SAGA_REF = "tests.integration.participants.flaky_order:saga"


@pytest.mark.timeout(180)
def test_unset_replication_gives_three_replicas_and_min_insync_two_and_describe_shows_it(
    kafka_cluster: LocalKafka, unique_name: Callable[[str], str]
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=kafka_cluster.bootstrap_servers, topic_prefix=unique_name("") + "."
    )
    report = provision(compile_versions(flaky_order.saga), kafka)
    # The saga's own four topics (changelog included), one command topic per queue, and
    # the processors' query-endpoint announcements.
    assert len(report.created) == 8, report

    admin = AdminClient(quiet_client_config(kafka.bootstrap_servers))
    metadata = admin.list_topics(timeout=30).topics
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in report.created]
    futures = admin.describe_configs(resources)
    for name, resource in zip(report.created, resources, strict=True):
        replicas = {len(p.replicas) for p in metadata[name].partitions.values()}
        assert replicas == {3}, (name, replicas)
        assert futures[resource].result(timeout=30)["min.insync.replicas"].value == "2", name

    described = _describe(kafka, "--output", "json")
    assert described.returncode == 0, described.stderr
    topics = json.loads(described.stdout)
    assert sorted(t["topic"] for t in topics) == sorted(report.created)
    for topic in topics:
        assert topic["matches"], topic
        assert topic["settings"]["replication.factor"]["actual"] == "3"
        assert topic["settings"]["min.insync.replicas"]["actual"] == "2"

    table = _describe(kafka).stdout.splitlines()
    assert table[0].split() == [
        "topic", "partitions", "replication", "min.insync", "cleanup", "retention", "spec"
    ]  # fmt: skip
    events = next(line.split() for line in table if line.startswith(f"{kafka.topic_prefix}flaky"))
    assert events[1:4] == ["3", "3", "2"]
    assert events[-1] == "ok"
    # Asked to compare with two replicas, it names every topic as differing.
    against_two = _describe(kafka, "--replication-factor", "2", "--output", "json")
    assert against_two.returncode == 1
    assert not any(t["matches"] for t in json.loads(against_two.stdout))


def _describe(kafka: KafkaSettings, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "SAGAS_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "sagas.cli", "topics", "describe", SAGA_REF, *options],
        cwd=_REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
