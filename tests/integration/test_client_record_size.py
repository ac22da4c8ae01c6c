"""The client refuses a start or signal too large for the saga's event log, before sending."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType
from pydantic import BaseModel

from processors.runner import provision
from sagas import Saga, StepContext, StepKind
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.errors import KafkaUnavailableError, RecordTooLargeError, SagaError
from topics.admin import topic_max_message_bytes
from topics.naming import TopicNames
from topics.record_limits import PRODUCER_DEFAULT_MAX_BYTES, RECORD_OVERHEAD_BYTES


class Letter(BaseModel):
    text: str


def _versions() -> SagaVersions:
    saga = Saga("letters", input=Letter)

    @saga.step(kind=StepKind.PIVOT)
    def post(ctx: StepContext[Letter]) -> None:
        return None

    return compile_versions(saga)


@pytest.fixture
def letters(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> tuple[SagaVersions, KafkaSettings]:
    versions = _versions()
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    provision(versions, kafka)
    return versions, kafka


def _records_in(kafka: KafkaSettings, topic: str) -> int:
    consumer = Consumer({**kafka.client_config(), "group.id": "record-size-check"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=30, cached=False
            )
            total += high - low
        return total
    finally:
        consumer.close()


def _set_max_message_bytes(kafka: KafkaSettings, topic: str, value: int) -> None:
    admin = AdminClient(kafka.client_config())
    entry = ConfigEntry(
        "max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while topic_max_message_bytes(admin, [topic]).get(topic) != value:
        assert time.monotonic() < deadline, f"{topic} kept its max.message.bytes"
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_an_oversized_input_or_signal_is_refused_naming_the_limit(
    letters: tuple[SagaVersions, KafkaSettings],
) -> None:
    versions, kafka = letters
    topic = TopicNames(versions.name, kafka.topic_prefix).events
    limit = PRODUCER_DEFAULT_MAX_BYTES - RECORD_OVERHEAD_BYTES
    with SagaClient(kafka) as client:
        with pytest.raises(RecordTooLargeError) as raised:
            client.start(versions, Letter(text="x" * 10_000_000), workflow_id="huge")
        error = raised.value
        assert isinstance(error, SagaError)
        assert (error.saga, error.workflow_id, error.topic) == ("letters", "huge", topic)
        assert error.limit == limit
        assert error.size > 10_000_000
        assert f"{error.size} bytes, over the limit of {limit} bytes" in str(error)

        with pytest.raises(RecordTooLargeError) as raised:
            # By bare name: a definition in hand would refuse the signal name first.
            client.signal("letters", "huge", "note", "y" * 2_000_000, check=False)
        assert "signal 'note'" in str(raised.value)
        assert raised.value.workflow_id == "huge"
    assert _records_in(kafka, topic) == 0


@pytest.mark.timeout(120)
def test_the_topic_s_own_limit_counts_and_a_refusal_by_the_broker_is_a_saga_error(
    letters: tuple[SagaVersions, KafkaSettings],
) -> None:
    versions, kafka = letters
    topic = TopicNames(versions.name, kafka.topic_prefix).events
    _set_max_message_bytes(kafka, topic, 50_000)
    with SagaClient(kafka) as client:
        with pytest.raises(RecordTooLargeError) as raised:
            client.start(versions, Letter(text="x" * 60_000), workflow_id="long")
        assert raised.value.limit == 50_000 - RECORD_OVERHEAD_BYTES
        client.start(versions, Letter(text="x" * 40_000), workflow_id="fits")
        # The topic shrinks after the client read its limit: the broker refuses, and
        # the client says so as a SagaError, not a raw librdkafka exception.
        _set_max_message_bytes(kafka, topic, 10_000)
        with pytest.raises(
            KafkaUnavailableError, match=r"Message size too large|MSG_SIZE_TOO_LARGE"
        ):
            client.start(versions, Letter(text="x" * 30_000), workflow_id="refused")
    assert _records_in(kafka, topic) == 1
