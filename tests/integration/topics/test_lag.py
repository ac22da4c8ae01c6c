from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.integration.topics.topic_setup import create_topic, produce
from topics.admin import TopicAdminError
from topics.lag import PartitionLag, consumer_lag

pytestmark = pytest.mark.kafka


def _commit(config: dict[str, Any], group: str, offsets: list[TopicPartition]) -> None:
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def test_lag_after_producing_and_committing(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("events"), unique_name("group")
    create_topic(kafka_config, topic, 2)
    produce(kafka_config, topic, [(0, b"a")] * 7 + [(1, b"b")] * 4)
    assert consumer_lag(kafka_config, group, [topic]) == [
        PartitionLag(topic, 0, None, 0, 7, 7),
        PartitionLag(topic, 1, None, 0, 4, 4),
    ]
    _commit(kafka_config, group, [TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 4)])
    assert consumer_lag(kafka_config, group, [topic]) == [
        PartitionLag(topic, 0, 5, 0, 7, 2),
        PartitionLag(topic, 1, 4, 0, 4, 0),
    ]


@pytest.mark.parametrize("transactional", [False, True])
def test_lag_of_a_caught_up_group_is_zero(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str], transactional: bool
) -> None:
    topic, group = unique_name("events"), unique_name("group")
    create_topic(kafka_config, topic, 1)
    if transactional:
        producer = Producer({**kafka_config, "transactional.id": unique_name("tx")})
        producer.init_transactions(30)
        producer.begin_transaction()
        for _ in range(5):
            producer.produce(topic, value=b"x", partition=0)
        producer.commit_transaction(30)
    else:
        produce(kafka_config, topic, [(0, b"x")] * 5)
    consumer = Consumer(
        {
            **kafka_config,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        consumer.subscribe([topic])
        read = 0
        for _ in range(60):
            read += len([m for m in consumer.consume(10, timeout=0.5) if m.error() is None])
            if read == 5:
                break
        assert read == 5
        # One more poll reaches the end of the log, past a transaction's marker.
        assert [m for m in consumer.consume(10, timeout=0.5) if m.error() is None] == []
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    [partition] = consumer_lag(kafka_config, group, [topic])
    # A committed transaction's marker takes offset 5; the consumer's position is past it.
    end = 6 if transactional else 5
    assert (partition.committed, partition.end_offset, partition.lag) == (end, end, 0)


def test_open_transaction_is_not_lag_for_read_committed(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("events"), unique_name("group")
    create_topic(kafka_config, topic, 1)
    produce(kafka_config, topic, [(0, b"done")] * 3)
    producer = Producer({**kafka_config, "transactional.id": unique_name("tx")})
    producer.init_transactions(30)
    producer.begin_transaction()
    for _ in range(4):
        producer.produce(topic, value=b"pending", partition=0)
    assert producer.flush(30) == 0
    try:
        [committed] = consumer_lag(kafka_config, group, [topic])
        [uncommitted] = consumer_lag(kafka_config, group, [topic], isolation="read_uncommitted")
        assert (committed.end_offset, committed.lag) == (3, 3)
        assert (uncommitted.end_offset, uncommitted.lag) == (7, 7)
    finally:
        producer.abort_transaction(30)


def test_records_deleted_by_retention_are_not_lag(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("events"), unique_name("group")
    create_topic(kafka_config, topic, 1)
    produce(kafka_config, topic, [(0, b"old")] * 6)
    _commit(kafka_config, group, [TopicPartition(topic, 0, 1)])
    admin = AdminClient(kafka_config)
    deleted = admin.delete_records([TopicPartition(topic, 0, 4)])
    for future in deleted.values():
        future.result(timeout=30)
    [partition] = consumer_lag(kafka_config, group, [topic])
    assert (partition.committed, partition.log_start, partition.lag) == (1, 4, 2)


def test_missing_topic_is_named(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    missing = unique_name("missing")
    with pytest.raises(TopicAdminError, match=f"topic '{missing}' does not exist"):
        consumer_lag(kafka_config, unique_name("group"), [missing])
