"""A workflow's full history, read from its saga's event log (so it survives lost state)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException

from sagas.client.undecodable import undecodable
from sagas.config import KafkaSettings
from sagas.errors import KafkaUnavailableError, SerializationError
from sagas.events import Event
from schemas.deployment_codecs import event_codec
from topics.consumer_reads import read_partition
from topics.naming import TopicNames
from topics.partitioning import partition_for


def read_history(
    kafka: KafkaSettings,
    saga: str,
    workflow_id: str,
    timeout: float = 60.0,
    *,
    config: Mapping[str, Any] | None = None,
) -> list[Event]:
    """Every event of ``workflow_id`` in log order: inputs and the processor's decisions.

    Only the workflow's partition is read (found with Kafka's murmur2 of the workflow id),
    from its first retained offset to its committed end. A record of the workflow that
    cannot be decoded raises :class:`SerializationError` naming it. ``config`` replaces
    the connection settings.
    """
    topic = TopicNames(saga, kafka.topic_prefix).events
    key = workflow_id.encode()
    consumer = Consumer(
        {
            **(kafka.client_config() if config is None else config),
            "group.id": f"{topic}.history.{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=kafka.connect_timeout)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise KafkaUnavailableError(f"event topic {topic} does not exist", saga=saga)
        partition = partition_for(key, len(described.partitions))
        codec = event_codec(kafka, topic)
        events: list[Event] = []
        for message in read_partition(consumer, topic, partition, timeout):
            value = message.value()
            if message.key() != key or value is None:
                continue
            try:
                events.append(codec.decode(value))
            except SerializationError as exc:
                offset = message.offset()
                raise undecodable(codec, topic, partition, offset or 0, value, exc) from exc
        return events
    except KafkaException as exc:
        raise KafkaUnavailableError(f"reading {topic} failed: {exc}", saga=saga) from exc
    finally:
        consumer.close()


def describe(event: Event) -> str:
    """One line of history: time, type, step, attempt and a short payload summary."""
    when = datetime.fromtimestamp(event.time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[
        :-3
    ]
    parts = [when, f"{event.type.value:<28}"]
    if event.step:
        parts.append(f"step={event.step}")
    if event.attempt:
        parts.append(f"attempt={event.attempt}")
    if event.name:
        parts.append(f"name={event.name}")
    if event.error is not None:
        parts.append(f"error={event.error.type}: {event.error.message}")
    if event.payload:
        summary = event.payload if len(event.payload) <= 80 else event.payload[:77] + "..."
        parts.append(f"payload={summary}")
    return "  ".join(parts)
