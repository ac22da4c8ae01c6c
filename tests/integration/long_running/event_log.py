"""Reading a saga's topics back from Kafka: the whole event log by workflow, any topic raw."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from sagas.config import KafkaSettings
from sagas.events import Event
from schemas import EventCodec
from topics.naming import TopicNames


@dataclass(frozen=True, slots=True)
class Record:
    """One committed record of a topic."""

    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def read_events(kafka: KafkaSettings, saga: str, timeout: float = 120.0) -> dict[str, list[Event]]:
    """Every committed event of ``saga``, by workflow id, each workflow's in offset order."""
    codec = EventCodec()
    by_workflow: defaultdict[str, list[Event]] = defaultdict(list)
    for record in read_topic(kafka, TopicNames(saga, kafka.topic_prefix).events, timeout):
        event = codec.decode(record.value)
        by_workflow[event.workflow_id].append(event)
    return dict(by_workflow)


def read_topic(kafka: KafkaSettings, topic: str, timeout: float = 120.0) -> list[Record]:
    """Every committed record of ``topic``, partition by partition in offset order."""
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{topic}.test-reader.{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    records: list[Record] = []
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        partitions = [TopicPartition(topic, p, 0) for p in sorted(metadata.partitions)]
        consumer.assign(partitions)
        ends = {}
        for tp in partitions:
            low, high = consumer.get_watermark_offsets(tp, timeout=30, cached=False)
            if high > low:  # an empty partition has no position to reach
                ends[tp.partition] = high
        deadline = time.monotonic() + timeout
        # The position moves past transaction markers and aborted records too, so reaching
        # the high watermark everywhere means every committed record has been read.
        while any(
            tp.offset < ends[tp.partition]
            for tp in consumer.position([TopicPartition(topic, p) for p in ends])
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {topic} did not reach its end in {timeout}s")
            for message in consumer.consume(5000, 0.2):
                value = message.value()
                if message.error() is not None or value is None:
                    continue
                raw = message.headers()
                # The consumer hands headers over as a list of (name, bytes) pairs.
                pairs = raw.items() if isinstance(raw, dict) else raw or []
                headers = {name: data for name, data in pairs if isinstance(data, bytes)}
                records.append(Record(message.key(), value, headers))
    finally:
        consumer.close()
    return records
