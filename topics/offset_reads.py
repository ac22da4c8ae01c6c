"""Reading a topic's partitions, log-start and end offsets, and a group's committed offsets."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from confluent_kafka import Consumer, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    OffsetSpec,
)

from topics.admin import (
    TopicAdminError,
    cluster_topics,
    kafka_error_of,
    until_coordinator_answers,
    wait,
)

Isolation = Literal["read_committed", "read_uncommitted"]
"""Which end of a partition counts: the last stable offset, or the high watermark."""

_ISOLATION_LEVELS = {
    "read_committed": IsolationLevel.READ_COMMITTED,
    "read_uncommitted": IsolationLevel.READ_UNCOMMITTED,
}


# confluent-kafka leaves OffsetSpec's constructors unannotated.
def earliest_spec() -> OffsetSpec:
    """The spec of a partition's log-start offset."""
    spec: OffsetSpec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
    return spec


def latest_spec() -> OffsetSpec:
    """The spec of a partition's end offset."""
    spec: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    return spec


def timestamp_spec(time_ms: int) -> OffsetSpec:
    """The spec of the first offset whose timestamp is at or after ``time_ms``."""
    spec: OffsetSpec = OffsetSpec.for_timestamp(time_ms)
    return spec


def topic_partitions(
    client: AdminClient, topics: Sequence[str], timeout_s: float
) -> list[TopicPartition]:
    """Every partition of ``topics``, in topic then partition order; a missing topic is an error."""
    known = cluster_topics(client, timeout_s)
    partitions: list[TopicPartition] = []
    for topic in topics:
        described = known.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise TopicAdminError(
                f"topic {topic!r} does not exist", operation="describe topic", topic=topic
            )
        partitions.extend(TopicPartition(topic, p) for p in sorted(described.partitions))
    return partitions


def list_offsets(
    client: AdminClient,
    specs: Mapping[TopicPartition, OffsetSpec],
    timeout_s: float,
    isolation: Isolation = "read_committed",
) -> dict[tuple[str, int], int]:
    """The offset each ``OffsetSpec`` names, per (topic, partition); -1 when there is none."""
    if not specs:
        return {}
    futures = client.list_offsets(
        dict(specs), isolation_level=_ISOLATION_LEVELS[isolation], request_timeout=timeout_s
    )
    return {
        (tp.topic, tp.partition): wait(
            future, timeout_s, operation="list offsets", topic=tp.topic
        ).offset
        for tp, future in futures.items()
    }


def watermarks(
    client: AdminClient,
    partitions: Sequence[TopicPartition],
    timeout_s: float,
    isolation: Isolation = "read_committed",
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """The log-start offset and the end offset of each partition, per (topic, partition)."""
    earliest = list_offsets(
        client,
        {TopicPartition(tp.topic, tp.partition): earliest_spec() for tp in partitions},
        timeout_s,
        isolation,
    )
    latest = list_offsets(
        client,
        {TopicPartition(tp.topic, tp.partition): latest_spec() for tp in partitions},
        timeout_s,
        isolation,
    )
    return earliest, latest


def committed_offsets(
    config: Mapping[str, Any],
    group: str,
    partitions: Sequence[TopicPartition],
    timeout_s: float,
) -> dict[tuple[str, int], int | None]:
    """The group's committed offset of each partition, None where it committed none."""
    # Not the admin API's list_consumer_group_offsets: librdkafka crashes the process
    # when that request meets NOT_COORDINATOR, as it does while a fresh cluster loads
    # its offsets topic (confluent-kafka-python#1982). A consumer that never subscribes
    # reads the same offsets without joining the group, and retries that answer.
    deadline = time.monotonic() + timeout_s
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})

    def fetch() -> list[TopicPartition]:
        try:
            return consumer.committed(
                [TopicPartition(tp.topic, tp.partition) for tp in partitions],
                timeout=max(deadline - time.monotonic(), 0.1),
            )
        except KafkaException as exc:
            error = kafka_error_of(exc)
            raise TopicAdminError(
                f"cannot read group {group}'s committed offsets:"
                f" {error.str() if error is not None else exc}",
                operation="list committed offsets",
                group=group,
                code=error.name() if error is not None else None,
                retriable=bool(error is not None and error.retriable()),
            ) from exc

    try:
        answer = until_coordinator_answers(fetch, deadline)
    finally:
        consumer.close()
    committed: dict[tuple[str, int], int | None] = {}
    for tp in answer:
        if tp.error is not None:
            raise TopicAdminError(
                f"cannot read group {group}'s offset of {tp.topic}[{tp.partition}]:"
                f" {tp.error.str()}",
                operation="list committed offsets",
                topic=tp.topic,
                group=group,
                code=tp.error.name(),
            )
        # OFFSET_INVALID (-1001) is how Kafka says "nothing committed".
        committed[(tp.topic, tp.partition)] = None if tp.offset < 0 else tp.offset
    return committed
