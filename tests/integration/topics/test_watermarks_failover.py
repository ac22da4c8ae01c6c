"""On the real three-broker cluster, a client that subscribes to nothing reads a
partition's watermarks again after its leader died and another replica took over,
though its metadata cache still names the dead leader."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sagas.config import KafkaSettings
from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import quiet_client_config
from topics.client_configs import consumer_config
from topics.consumer_reads import watermarks

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]

RECORDS = 5


def _leader(admin: AdminClient, topic: str) -> int:
    return int(admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader)


@pytest.mark.timeout(240)
def test_watermarks_are_read_from_the_new_leader_though_the_cache_names_the_dead_one(
    kafka_cluster: LocalKafka, unique_name: Callable[[str], str]
) -> None:
    admin = AdminClient(quiet_client_config(kafka_cluster.bootstrap_servers))
    # The partition's preferred leader is a broker that is not the active controller:
    # killing it moves the partition, and leaves the quorum as it was.
    controller = kafka_cluster.active_controller()
    doomed = next(n for n in kafka_cluster.node_ids if n != controller)
    replicas = [doomed, *(n for n in kafka_cluster.node_ids if n != doomed)]
    topic, other = unique_name("moves"), unique_name("other")
    created = admin.create_topics(
        [NewTopic(topic, 1, replica_assignment=[replicas]), NewTopic(other, 1)]
    )
    for future in created.values():
        future.result(30)
    producer = Producer(quiet_client_config(kafka_cluster.bootstrap_servers))
    for i in range(RECORDS):
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(30) == 0
    assert _leader(admin, topic) == doomed

    kafka = KafkaSettings(bootstrap_servers=kafka_cluster.bootstrap_servers)
    reader = Consumer(consumer_config(kafka, unique_name("reader")))
    tp = TopicPartition(topic, 0)
    try:
        assert watermarks(reader, tp) == (0, RECORDS)  # the cache now names ``doomed``
        kafka_cluster.kill_node(doomed)
        give_up = time.monotonic() + 60
        while _leader(admin, topic) in (doomed, -1):
            assert time.monotonic() < give_up, f"{topic}[0] has not moved off {doomed}"
            time.sleep(0.5)
        # Metadata about another topic drops the dead broker from the reader's list of
        # brokers, and leaves the cache's leader of ``topic`` as it was.
        assert doomed not in reader.list_topics(other, timeout=10).brokers
        started = time.monotonic()
        assert watermarks(reader, tp, timeout=30) == (0, RECORDS)
        # A failover answer is asked again every half second, the metadata refreshed first.
        assert time.monotonic() - started < 10
    finally:
        reader.close()
        kafka_cluster.restart_node(doomed)
