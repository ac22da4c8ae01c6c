"""The broker the tests run against is a real Kafka: idempotence, groups, transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(config: dict[str, Any], name: str, partitions: int = 1) -> None:
    # The admin client must outlive the future, or librdkafka cancels the request.
    admin = AdminClient(config)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)


def consume_all(config: dict[str, Any], topic: str, isolation: str) -> list[bytes]:
    """Every record value a consumer with this isolation level reads from partition 0."""
    consumer = Consumer({**config, "group.id": "unused", "isolation.level": isolation})
    partition = TopicPartition(topic, 0, 0)
    consumer.assign([partition])
    _, end = consumer.get_watermark_offsets(partition, timeout=10)
    values: list[bytes] = []
    try:
        # The position passes the transaction markers and the aborted records too, so
        # reaching the high watermark means everything this isolation level shows was read.
        while consumer.position([partition])[0].offset < end:
            values.extend(
                m.value()
                for m in consumer.consume(num_messages=100, timeout=1.0)
                if m.error() is None
            )
    finally:
        consumer.close()
    return values


def test_idempotent_produce_and_group_commit(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("topic"), unique_name("group")
    create_topic(kafka_config, topic)
    producer = Producer({**kafka_config, "enable.idempotence": True, "acks": "all"})
    delivered: list[Message] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append(msg)

    for i in range(10):
        producer.produce(topic, key=b"k", value=str(i).encode(), on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert errors == []
    assert [m.offset() for m in delivered] == list(range(10))

    consumer = Consumer(
        {
            **kafka_config,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: list[Message] = []
    while len(seen) < 10:
        seen.extend(m for m in consumer.consume(num_messages=10, timeout=5.0) if m.error() is None)
    consumer.commit(asynchronous=False)
    consumer.close()
    assert [m.value() for m in seen] == [str(i).encode() for i in range(10)]

    # A new member of the same group resumes from the committed offset.
    fresh = Consumer({**kafka_config, "group.id": group})
    committed = fresh.committed([TopicPartition(topic, 0)], timeout=10)
    fresh.close()
    assert committed[0].offset == 10


def test_read_committed_sees_only_the_committed_transaction(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("txn")
    create_topic(kafka_config, topic)
    producer = Producer({**kafka_config, "transactional.id": unique_name("tx-id")})
    producer.init_transactions(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"committed")
    producer.commit_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"aborted")
    producer.flush(30)  # the record really is written to the log before the abort
    producer.abort_transaction(30)

    assert consume_all(kafka_config, topic, "read_uncommitted") == [b"committed", b"aborted"]
    assert consume_all(kafka_config, topic, "read_committed") == [b"committed"]
