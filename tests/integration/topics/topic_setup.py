"""Creating a topic and producing keyed records, for the topic integration tests."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]


def create_topic(config: dict[str, Any], topic: str, partitions: int) -> None:
    """Create ``topic`` with one replica and wait for it."""
    admin = AdminClient(config)
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)


def produce(
    config: dict[str, Any],
    topic: str,
    records: list[tuple[int, bytes]],
    timestamps: list[int] | None = None,
) -> None:
    """Write ``(partition, value)`` records in order and wait until all are acknowledged."""
    producer = Producer({**config, "enable.idempotence": True})
    for i, (partition, value) in enumerate(records):
        # Timestamp 0 lets the producer stamp the record with the current time.
        timestamp = 0 if timestamps is None else timestamps[i]
        producer.produce(topic, value=value, partition=partition, timestamp=timestamp)
    assert producer.flush(30) == 0
