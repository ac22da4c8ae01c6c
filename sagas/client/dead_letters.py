"""Reading a saga's dead-letter queue, and putting records back (redrive)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from sagas.config import KafkaSettings
from sagas.errors import KafkaUnavailableError
from sagas.events import Event, EventType, Origin
from schemas.codecs import Codec
from schemas.deployment_codecs import event_codec
from topics.client_configs import producer_config
from topics.consumer_reads import read_partition
from topics.dead_letter_headers import (
    HEADER_EXCEPTION,
    HEADER_REASON,
    HEADER_WORKFLOW,
    decode_headers,
)
from topics.naming import TopicNames


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of ``<saga>.dlq``: the original key and bytes, and why it is there."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def workflow_id(self) -> str | None:
        return self.headers.get(HEADER_WORKFLOW)

    @property
    def reason(self) -> str:
        return self.headers.get(HEADER_REASON, "unknown")

    @property
    def exception(self) -> str:
        return self.headers.get(HEADER_EXCEPTION, "")


def read_dead_letters(kafka: KafkaSettings, saga: str, timeout: float = 60.0) -> list[DeadLetter]:
    """Every record in the saga's DLQ, partition by partition, oldest first."""
    topic = TopicNames(saga, kafka.topic_prefix).dlq
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{topic}.reader.{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        described = consumer.list_topics(topic, timeout=kafka.connect_timeout).topics.get(topic)
        if described is None or described.error is not None:
            raise KafkaUnavailableError(f"dead-letter topic {topic} does not exist", saga=saga)
        letters: list[DeadLetter] = []
        for partition in sorted(described.partitions):
            for message in read_partition(consumer, topic, partition, timeout):
                offset, headers = message.offset(), message.headers()
                if offset is None:
                    continue
                letters.append(
                    DeadLetter(
                        partition, offset, message.key(), message.value(),
                        decode_headers(headers if isinstance(headers, list) else None),
                    )
                )  # fmt: skip
        return letters
    except KafkaException as exc:
        raise KafkaUnavailableError(f"reading {topic} failed: {exc}", saga=saga) from exc
    finally:
        consumer.close()


def redrive(kafka: KafkaSettings, saga: str, letters: list[DeadLetter]) -> int:
    """Put ``letters`` back on the saga's event log; returns how many were sent.

    A record of a workflow goes back inside a ``redrive_requested`` event, which unparks
    the workflow and applies the record and then what was held meanwhile, in order. A
    record with no workflow (unreadable, without a key) goes back as it was.
    """
    topic = TopicNames(saga, kafka.topic_prefix).events
    codec = event_codec(kafka, topic)
    producer = Producer(producer_config(kafka))
    try:
        return _send_back(producer, codec, topic, saga, letters)
    finally:
        producer.purge()
        producer.close()


def _send_back(
    producer: Producer, codec: Codec[Event], topic: str, saga: str, letters: list[DeadLetter]
) -> int:
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)

    for letter in letters:
        wid = letter.workflow_id
        if wid is None or letter.value is None:
            producer.produce(topic, letter.value, letter.key, on_delivery=on_delivery)
            continue
        payload = json.dumps(
            {
                "value": base64.b64encode(letter.value).decode(),
                "dlq_partition": letter.partition,
                "dlq_offset": letter.offset,
            }
        )
        event = Event(
            event_id=uuid.uuid4().hex, workflow_id=wid, saga=saga, version=0,
            type=EventType.REDRIVE_REQUESTED, origin=Origin.CLIENT,
            time_ms=time.time_ns() // 1_000_000, payload=payload,
        )  # fmt: skip
        producer.produce(topic, codec.encode(event), wid.encode(), on_delivery=on_delivery)
    remaining = producer.flush(30)
    if remaining:
        raise KafkaUnavailableError(
            f"{remaining} redriven record(s) not acknowledged: not written", saga=saga
        )
    if failures:
        raise KafkaUnavailableError(
            f"{len(failures)} redriven record(s) not written to Kafka, first: {failures[0].str()}",
            saga=saga,
        )
    return len(letters)
