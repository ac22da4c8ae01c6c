"""The reading commands on a real broker: an unknown workflow is answered at once, a
record the client cannot decode is named, and ``--output json`` is JSON.

Before, ``sagas result order nope-123`` waited out its 300 s timeout, and a client
without the schema-registry setting dropped every registry-encoded status record and
said "no such workflow" for workflows that exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from examples.order_saga import saga
from processors.runner import provision
from sagas.cli.exit_codes import ExitCode
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.errors import SerializationError
from sagas.events import StatusRecord, WorkflowStatus
from schemas.deployment_codecs import status_codec
from topics.naming import TopicNames
from topics.partitioning import partition_for

ROOT = Path(__file__).resolve().parents[2]
# A registry-framed value: magic byte 0, a 4-byte schema id, then the Avro body.
FRAMED = b"\x00\x00\x00\x00\x07" + b"\x04w1"


@pytest.fixture
def kafka(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> KafkaSettings:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name() + ".")
    provision(compile_versions(saga), settings)
    return settings


def _sagas(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "SAGAS_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
    env.pop("SAGAS_SCHEMA_REGISTRY_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "sagas.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _produce(kafka: KafkaSettings, topic: str, key: bytes, value: bytes, partition: int) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "acks": "all"})
    producer.produce(topic, value, key, partition=partition)
    assert producer.flush(30) == 0
    producer.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["result", "status"])
def test_an_unknown_workflow_is_not_found_at_once(kafka: KafkaSettings, command: str) -> None:
    begun = time.monotonic()
    answered = _sagas(kafka, command, "order", "nope-123")
    assert time.monotonic() - begun < 5
    assert answered.returncode == ExitCode.NOT_FOUND
    assert answered.stderr == "Error: no such workflow (saga=order, workflow_id=nope-123)\n"


@pytest.mark.timeout(120)
def test_status_prints_json_with_output_json(kafka: KafkaSettings) -> None:
    topic = TopicNames("order", kafka.topic_prefix).status
    record = StatusRecord("w1", "order", 1, WorkflowStatus.COMPLETED, 1, 2, result='{"ok": 1}')
    _produce(kafka, topic, b"w1", status_codec(kafka, topic).encode(record), 0)
    shown = _sagas(kafka, "status", "order", "w1", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["workflow_id"], data["status"], data["result"]) == ("w1", "COMPLETED", {"ok": 1})
    text = _sagas(kafka, "result", "order", "w1")
    assert text.returncode == 0
    assert "status:         COMPLETED" in text.stdout


@pytest.mark.timeout(120)
def test_a_registry_encoded_status_without_a_registry_is_a_named_error(
    kafka: KafkaSettings,
) -> None:
    topic = TopicNames("order", kafka.topic_prefix).status
    _produce(kafka, topic, b"w1", FRAMED, 1)
    expected = (
        f"record at {topic}[1]@0 is in the schema-registry wire format but no"
        " SAGAS_SCHEMA_REGISTRY_URL is set"
    )
    with SagaClient(kafka) as client, pytest.raises(SerializationError) as raised:
        client.status("order", "w1", timeout=20)
    assert str(raised.value) == expected
    failed = _sagas(kafka, "status", "order", "w1")
    assert (failed.returncode, failed.stderr) == (ExitCode.ERROR, f"Error: {expected}\n")


@pytest.mark.timeout(120)
def test_history_names_a_record_it_cannot_decode(kafka: KafkaSettings) -> None:
    topic = TopicNames("order", kafka.topic_prefix).events
    count = len(
        AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        .list_topics(topic, timeout=10)
        .topics[topic]
        .partitions
    )
    partition = partition_for(b"w1", count)
    _produce(kafka, topic, b"w1", FRAMED, partition)
    failed = _sagas(kafka, "history", "order", "w1")
    assert failed.returncode == ExitCode.ERROR
    assert failed.stderr == (
        f"Error: record at {topic}[{partition}]@0 is in the schema-registry wire format but no"
        " SAGAS_SCHEMA_REGISTRY_URL is set\n"
    )


@pytest.mark.timeout(120)
def test_dlq_list_and_topics_create_print_json(kafka: KafkaSettings) -> None:
    listed = _sagas(kafka, "dlq", "list", "order", "--output", "json")
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    created = _sagas(kafka, "topics", "create", "examples.order_saga:saga", "--output", "json")
    report = json.loads(created.stdout)
    assert report["created"] == []
    assert TopicNames("order", kafka.topic_prefix).events in report["existing"]


@pytest.mark.timeout(120)
def test_result_of_a_running_workflow_times_out_with_exit_code_5_and_a_spinner_on_a_tty(
    kafka: KafkaSettings,
) -> None:
    topic = TopicNames("order", kafka.topic_prefix).status
    record = StatusRecord("w2", "order", 1, WorkflowStatus.RUNNING, 1, 2)
    _produce(kafka, topic, b"w2", status_codec(kafka, topic).encode(record), 0)
    piped = _sagas(kafka, "result", "order", "w2", "--timeout", "1")
    assert (piped.returncode, piped.stdout) == (ExitCode.TIMED_OUT, "")
    assert piped.stderr == (
        "Error: the workflow did not end within 1 s (saga=order, workflow_id=w2)\n"
    )
    # On a terminal, the wait shows what it waits for.
    controller, terminal = pty.openpty()
    env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "SAGAS_TOPIC_PREFIX": kafka.topic_prefix, "TERM": "xterm"}  # fmt: skip
    ran = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "result", "order", "w2", "--timeout", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=terminal, timeout=60, check=False,
    )  # fmt: skip
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(controller, 65536):
            shown += chunk
    os.close(controller)
    assert ran.returncode == ExitCode.TIMED_OUT
    assert ran.stdout == b""
    assert b"waiting for workflow w2 to end" in shown


@pytest.mark.timeout(120)
def test_redrive_with_nothing_matching_is_not_found(kafka: KafkaSettings) -> None:
    answered = _sagas(kafka, "dlq", "redrive", "order", "--workflow", "nope")
    assert (answered.returncode, answered.stderr) == (
        ExitCode.NOT_FOUND,
        "Error: no dead-lettered record matches\n",
    )


@pytest.mark.timeout(120)
def test_start_of_a_saga_without_topics_says_so_at_once(kafka: KafkaSettings) -> None:
    begun = time.monotonic()
    answered = _sagas(kafka, "start", "undeployed", "--input", "{}")
    assert time.monotonic() - begun < 5
    topic = TopicNames("undeployed", kafka.topic_prefix).events
    assert (answered.returncode, answered.stdout, answered.stderr) == (
        ExitCode.ERROR,
        "",
        f"Error: event topic {topic} does not exist; run `sagas topics create` first"
        " (saga=undeployed)\n",
    )
