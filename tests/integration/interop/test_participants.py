"""Sagas complete through participants that know only Kafka, Avro and the documented contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from processors.runner import Role, WorkerRunner
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.errors import SagaError
from sagas.events import EventType, Origin, WorkflowStatus
from schemas.codecs import EventCodec
from schemas.registry import SchemaRegistryClient
from schemas.wire_format import topic_codec
from tests.integration.interop import payment_saga
from topics.naming import TopicNames
from topics.partitioning import partition_for

HERE = Path(__file__).parent
REPO = HERE.parents[2]
WORKFLOWS = 3


def _sagas(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagas.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def env_for(kafka_bootstrap: str) -> Callable[..., dict[str, str]]:
    def make(prefix: str, registry: str | None = None) -> dict[str, str]:
        env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": kafka_bootstrap}
        env["SAGAS_TOPIC_PREFIX"] = prefix
        env["PYTHONPATH"] = str(REPO)
        env.pop("SAGAS_SCHEMA_REGISTRY_URL", None)
        if registry is not None:
            env["SAGAS_SCHEMA_REGISTRY_URL"] = registry
        return env

    return make


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[Callable[[KafkaSettings], WorkerRunner]]:
    runners: list[WorkerRunner] = []

    def start(kafka: KafkaSettings) -> WorkerRunner:
        versions = compile_versions(payment_saga.saga)
        runner = WorkerRunner(
            versions,
            kafka,
            role=Role.PROCESSOR,
            processor_settings=ProcessorSettings(state_dir=tmp_path / "state", store="memory"),
        ).start()
        runners.append(runner)
        runner.wait_ready()
        return runner

    yield start
    for runner in runners:
        runner.stop()
        runner.raise_errors()


def _run_workflows(kafka: KafkaSettings, participant: subprocess.Popen[str]) -> None:
    """Start the workflows, wait for their results, and check where their answers landed."""
    client = SagaClient(kafka)
    try:
        ids = [
            client.start(
                payment_saga.saga,
                payment_saga.PaymentInput(order_id=f"o{i}", amount_cents=100 * (i + 1)),
                workflow_id=f"payment-{i}",
            )
            for i in range(WORKFLOWS)
        ]
        for i, wid in enumerate(ids):
            try:
                status = client.result(payment_saga.saga, wid, timeout=90)
            except SagaError:
                participant.kill()
                raise AssertionError(
                    f"participant said: {participant.communicate()[1]}\n"
                    f"dead letters: {_dead_letters(kafka)}"
                ) from None
            assert status.status is WorkflowStatus.COMPLETED, status
            assert status.result is not None
            charge = json.loads(status.result)["charge"]  # the workflow's result: step -> result
            assert payment_saga.Charge.model_validate(charge) == payment_saga.Charge(
                charge_id=f"ch-o{i}", amount_cents=100 * (i + 1), captured=True
            )
    finally:
        client.close()
    _, stderr = participant.communicate(timeout=60)
    assert participant.returncode == 0, stderr
    _assert_answers_on_their_workflows_partitions(kafka)
    assert _dead_letters(kafka) == []


def _committed_records(kafka: KafkaSettings, topic: str) -> tuple[int, list[Message]]:
    """The partition count of ``topic`` and every committed record in it, read to its end."""
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": f"{topic}.check",
         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "enable.partition.eof": True}
    )  # fmt: skip
    records: list[Message] = []
    try:
        partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + 30
        while len(at_end) < partitions and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            if error is None:
                records.append(message)
                continue
            assert error.code() == KafkaError._PARTITION_EOF, error
            at_end.add(message.partition())
        assert len(at_end) == partitions, f"{topic} not read to its end in 30 s"
    finally:
        consumer.close()
    return partitions, records


def _assert_answers_on_their_workflows_partitions(kafka: KafkaSettings) -> None:
    """Each answer is keyed by its workflow id, on murmur2(workflow id)'s partition."""
    topic = TopicNames(payment_saga.saga.name, kafka.topic_prefix).events
    registry = (
        SchemaRegistryClient(kafka.schema_registry_url) if kafka.schema_registry_url else None
    )
    codec = topic_codec(EventCodec(), topic, registry)
    partitions, records = _committed_records(kafka, topic)
    answers: dict[str, tuple[bytes | None, int]] = {}
    for message in records:
        event = codec.decode(message.value())
        if event.origin is Origin.WORKER and event.type is EventType.STEP_SUCCEEDED:
            answers[event.workflow_id] = (message.key(), message.partition())
    wids = [f"payment-{i}" for i in range(WORKFLOWS)]
    assert answers == {w: (w.encode(), partition_for(w.encode(), partitions)) for w in wids}


def _dead_letters(kafka: KafkaSettings) -> list[str]:
    """Why each record in the saga's DLQ is there, for a failure message."""
    _, records = _committed_records(kafka, TopicNames("payment", kafka.topic_prefix).dlq)
    return [
        "; ".join(f"{k}={v.decode(errors='replace')}" for k, v in (m.headers() or []) if v)
        for m in records
    ]


@pytest.mark.timeout(240)
def test_a_participant_built_with_confluent_serializers_serves_a_step(
    kafka_bootstrap: str,
    schema_registry: str,
    unique_name: Callable[[str], str],
    env_for: Callable[..., dict[str, str]],
    processor: Callable[[KafkaSettings], WorkerRunner],
) -> None:
    prefix = unique_name("") + "."
    env = env_for(prefix, schema_registry)
    created = _sagas("topics", "create", "tests.integration.interop.payment_saga:saga", env=env)
    assert created.returncode == 0, created.stderr
    assert f"schema   {prefix}payment.v1.step.charge.result-value" in created.stdout
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, schema_registry_url=schema_registry
    )
    processor(kafka)
    participant = subprocess.Popen(
        [sys.executable, str(HERE / "confluent_participant.py"), kafka_bootstrap,
         schema_registry, prefix, "payment", "charge", "payments", str(WORKFLOWS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE,
    )  # fmt: skip
    try:
        _run_workflows(kafka, participant)
    finally:
        participant.kill()


@pytest.mark.timeout(240)
def test_a_participant_built_from_the_avsc_files_serves_a_step_in_plain_avro(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    env_for: Callable[..., dict[str, str]],
    processor: Callable[[KafkaSettings], WorkerRunner],
    tmp_path: Path,
) -> None:
    prefix = unique_name("") + "."
    env = env_for(prefix)
    ref = "tests.integration.interop.payment_saga:saga"
    assert _sagas("topics", "create", ref, env=env).returncode == 0
    exported = _sagas("schemas", "export", ref, "--dir", str(tmp_path / "contracts"), env=env)
    assert exported.returncode == 0, exported.stderr
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    processor(kafka)
    participant = subprocess.Popen(
        [sys.executable, str(HERE / "plain_participant.py"), kafka_bootstrap,
         str(tmp_path / "contracts"), prefix, "payment", "charge", "payments", str(WORKFLOWS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE,
    )  # fmt: skip
    try:
        _run_workflows(kafka, participant)
    finally:
        participant.kill()
