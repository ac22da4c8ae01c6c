"""The README's demo: start a real local Kafka broker and send a round trip through it."""

from __future__ import annotations

import os
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import quiet_client_config


def round_trip(bootstrap: str) -> None:
    """Write one record in a committed Kafka transaction and read it back read_committed."""
    config = quiet_client_config(bootstrap)
    topic = f"demo-{int(time.time())}"
    admin = AdminClient(config)
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = Producer({**config, "transactional.id": f"{topic}-tx"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"demo", value=b"hello from kafka-sagas")
    producer.commit_transaction(30)
    consumer = Consumer({**config, "group.id": topic, "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    message = None
    while message is None or message.error() is not None:
        message = consumer.poll(10)
    consumer.close()
    print(f"read back from {topic}: {message.value()!r}")


def main() -> int:
    configured = os.environ.get("SAGAS_BOOTSTRAP_SERVERS")
    if configured:
        round_trip(configured)
        return 0
    print("Starting a local Apache Kafka broker on 127.0.0.1 ...", flush=True)
    with LocalKafka() as cluster:
        print(f"Kafka is up at {cluster.bootstrap_servers}", flush=True)
        round_trip(cluster.bootstrap_servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
