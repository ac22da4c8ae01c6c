"""A workflow too large for its topics fails alone; the saga processor and the rest go on."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType
from pydantic import BaseModel

from processors.runner import WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas import Saga, StepContext
from sagas.client import SagaClient
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.engine.fold import RESULT_TOO_LARGE
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import Event, EventType, Origin, WorkflowStatus
from schemas import EventCodec
from tests.integration.processors.saga_run_checks import read_topic
from topics.admin import topic_max_message_bytes
from topics.dead_letter_headers import (
    HEADER_EXCEPTION,
    HEADER_REASON,
    HEADER_VALUE_OMITTED,
    DlqReason,
)
from topics.naming import TopicNames

SAGA = "sized_order"
NORMAL = 20


class Parcel(BaseModel):
    blob: str
    result_items: int = 0
    """How many short strings the fetch step returns (each costs ~5 bytes, more in the state)."""


def _versions() -> SagaVersions:
    saga = Saga(SAGA, input=Parcel)

    @saga.step()
    def reserve(ctx: StepContext[Parcel]) -> str:
        return "reserved"

    @reserve.compensation()
    def release(ctx: StepContext[Parcel]) -> None:
        return None

    @saga.step()
    def fetch(ctx: StepContext[Parcel]) -> list[str]:
        return ["ab"] * ctx.input.result_items

    @fetch.compensation()
    def forget(ctx: StepContext[Parcel]) -> None:
        return None

    return compile_versions(saga)


@pytest.fixture
def sized() -> SagaVersions:
    return _versions()


@pytest.fixture
def sized_kafka(
    kafka_bootstrap: str, unique_name: Callable[[str], str], sized: SagaVersions
) -> KafkaSettings:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    provision(sized, kafka)
    return kafka


def _produce_raw(kafka: KafkaSettings, topic: str, key: bytes, value: bytes) -> None:
    """Write one record as a participant in another language might, past our client's check."""
    producer = Producer(
        {**kafka.client_config(), "partitioner": "murmur2_random", "message.max.bytes": 4_000_000}
    )
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(error)

    producer.produce(topic, value, key, on_delivery=delivered)
    assert producer.flush(30) == 0
    assert errors == [], errors


def _start_record(workflow_id: str, payload: str) -> bytes:
    return EventCodec().encode(
        Event(
            event_id=uuid.uuid4().hex,
            workflow_id=workflow_id,
            saga=SAGA,
            version=1,
            type=EventType.START_REQUESTED,
            origin=Origin.CLIENT,
            time_ms=time.time_ns() // 1_000_000,
            payload=payload,
        )
    )


def _run_normal_sagas(client: SagaClient, sized: SagaVersions) -> None:
    ids = [f"normal-{i:02d}" for i in range(NORMAL)]
    for wid in ids:
        client.start(sized, Parcel(blob="small", result_items=3), workflow_id=wid, wait=False)
    client.flush()
    for wid in ids:
        assert client.result(SAGA, wid, timeout=90).status is WorkflowStatus.COMPLETED, wid


def _dead_letters(kafka: KafkaSettings) -> dict[bytes | None, dict[str, bytes]]:
    names = TopicNames(SAGA, kafka.topic_prefix)
    return {r.key: r.headers for r in read_topic(kafka.client_config(), names.dlq)}


@pytest.mark.timeout(240)
def test_oversized_workflows_fail_alone_and_the_saga_goes_on(
    sized: SagaVersions, sized_kafka: KafkaSettings, tmp_path: Path
) -> None:
    names = TopicNames(SAGA, sized_kafka.topic_prefix)
    # The broker takes the ~1.02 MB start below (its default max.message.bytes is
    # 1048588); the records the processor would build from it are larger still.
    assert topic_max_message_bytes(sized_kafka.client_config(), [names.events]) == {
        names.events: 1_048_588
    }
    runner = WorkerRunner(
        sized, sized_kafka, processor_settings=ProcessorSettings(state_dir=tmp_path)
    ).start()
    client = SagaClient(sized_kafka)
    try:
        runner.wait_ready()
        # 300 KB in, ~600 KB out of the fetch step: the answer fits its topic, but the
        # workflow's state (input + results, JSON-escaped) would not fit the changelog.
        client.start(
            sized, Parcel(blob="x" * 300_000, result_items=110_000), workflow_id="big-result"
        )
        raw = _start_record("big-start", json.dumps({"blob": "x" * 1_020_000}))
        assert 1_020_000 < len(raw) < 1_048_588
        _produce_raw(sized_kafka, names.events, b"big-start", raw)
        _run_normal_sagas(client, sized)
        big = client.result(SAGA, "big-result", timeout=90)
        assert runner.alive
        history = read_history(sized_kafka, SAGA, "big-result")
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()

    assert big.status is WorkflowStatus.COMPENSATED, big
    refused = [e for e in history if e.type is EventType.STEP_FAILED]
    assert len(refused) == 1
    assert refused[0].origin is Origin.PROCESSOR
    assert refused[0].step == "fetch"
    assert refused[0].error is not None
    assert refused[0].error.type == RESULT_TOO_LARGE
    assert "bytes, over the limit of" in refused[0].error.message
    assert [e.step for e in history if e.type is EventType.COMPENSATION_SUCCEEDED] == ["reserve"]

    dead = _dead_letters(sized_kafka)
    assert set(dead) == {b"big-start"}
    headers = dead[b"big-start"]
    assert headers[HEADER_REASON] == DlqReason.RECORD_TOO_LARGE.value.encode()
    assert b"bytes, over the limit of" in headers[HEADER_EXCEPTION]
    assert int(headers[HEADER_VALUE_OMITTED]) == len(raw)


@pytest.mark.timeout(240)
def test_a_record_the_broker_refuses_is_retried_without_its_workflow(
    sized: SagaVersions, sized_kafka: KafkaSettings, tmp_path: Path
) -> None:
    names = TopicNames(SAGA, sized_kafka.topic_prefix)
    runner = WorkerRunner(
        sized, sized_kafka, processor_settings=ProcessorSettings(state_dir=tmp_path)
    ).start()
    client = SagaClient(sized_kafka)
    try:
        runner.wait_ready()
        # Lowered after the processor read its limits: only the broker knows, and it
        # refuses the command below in the middle of the processor's transaction.
        _set_max_message_bytes(sized_kafka, names.commands(), 100_000)
        client.start(sized, Parcel(blob="x" * 150_000), workflow_id="refused")
        _run_normal_sagas(client, sized)
        assert runner.alive
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()

    dead = _dead_letters(sized_kafka)
    assert set(dead) == {b"refused"}
    assert dead[b"refused"][HEADER_REASON] == DlqReason.RECORD_TOO_LARGE.value.encode()


def _set_max_message_bytes(kafka: KafkaSettings, topic: str, value: int) -> None:
    admin = AdminClient(kafka.client_config())
    entry = ConfigEntry("max.message.bytes", str(value),
                        incremental_operation=AlterConfigOpType.SET)  # fmt: skip
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while topic_max_message_bytes(admin, [topic]).get(topic) != value:
        assert time.monotonic() < deadline, f"{topic} kept its max.message.bytes"
        time.sleep(0.2)
