"""Reading a saga's whole event log back from Kafka, grouped by workflow, in log order."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

from confluent_kafka import Consumer, TopicPartition

from sagas.config import KafkaSettings
from sagas.events import Event
from schemas import EventCodec
from topics.naming import TopicNames


def read_events(kafka: KafkaSettings, saga: str, timeout: float = 120.0) -> dict[str, list[Event]]:
    """Every committed event of ``saga``, by workflow id, each workflow's in offset order."""
    topic = TopicNames(saga, kafka.topic_prefix).events
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{topic}.test-reader.{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    codec = EventCodec()
    by_workflow: defaultdict[str, list[Event]] = defaultdict(list)
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        partitions = [TopicPartition(topic, p, 0) for p in sorted(metadata.partitions)]
        consumer.assign(partitions)
        ends = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=30, cached=False)[1]
            for tp in partitions
        }
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
                event = codec.decode(value)
                by_workflow[event.workflow_id].append(event)
    finally:
        consumer.close()
    return dict(by_workflow)
