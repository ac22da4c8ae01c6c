"""librdkafka settings of the runtime's consumers and transactional producers, and of the
client's plain producer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from confluent_kafka import KafkaException, Producer

from sagas.config import KafkaSettings
from sagas.errors import KafkaUnavailableError


def consumer_config(kafka: KafkaSettings, group: str) -> dict[str, Any]:
    """A consumer of one group that reads committed records and never commits on its own."""
    return {
        **kafka.client_config(),
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Records become visible only when their transaction commits; a short fetch wait
        # lets the next step start promptly instead of waiting out the default 500 ms.
        "fetch.wait.max.ms": 10,
        "partition.assignment.strategy": "range",
        # Static members (every process has a stable instance id) are dropped from the
        # group only when their session times out: with the default 45 s a process that
        # died for good left its partitions idle that long. 10 s, with a heartbeat every
        # second, hands them over in about 10 s (measured on the three-broker cluster),
        # while a supervisor's restart under the same id still takes them back at once.
        # The classic protocol stays: under the consumer protocol (KIP-848) a static
        # member that leaves on purpose keeps its partitions for the broker's session
        # timeout (42 s measured on Kafka 4.3 against 3 s here), and that timeout is the
        # broker's to set, not the client's.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
    }


def transactional_producer_config(
    kafka: KafkaSettings, transactional_id: str, transaction_timeout: timedelta
) -> dict[str, Any]:
    """A transactional producer that partitions keys as the Java client does."""
    return {
        **kafka.client_config(),
        "transactional.id": transactional_id,
        "transaction.timeout.ms": int(transaction_timeout.total_seconds() * 1000),
        # murmur2 like Java clients, so participants in other languages find the same
        # partition for a workflow id.
        "partitioner": "murmur2_random",
        "linger.ms": 2,
        "enable.idempotence": True,
        "acks": "all",
        # A transaction that adds partitions right after the previous commit is answered
        # CONCURRENT_TRANSACTIONS until the coordinator has written the commit markers;
        # with the default 100 ms backoff every transaction took over 100 ms (measured:
        # 106 ms, against 19 ms with 5 ms), and every hop of a saga waited for one.
        "retry.backoff.ms": 5,
        "retry.backoff.max.ms": 50,
        "connections.max.idle.ms": IDLE_CONNECTION_CLOSE_MS,
    }


IDLE_CONNECTION_CLOSE_MS = 5_000
"""When a transactional producer closes a broker connection it has not used.

librdkafka (2.16) can block ``send_offsets_to_transaction`` past its own timeout after
the group coordinator's broker is killed: once the dead broker drops out of the
metadata, the request waits for that broker's connection to change state, which never
happens, and it looks for the new coordinator only when some other connection goes up
or down. While the call waits the producer sends nothing, so an idle limit closes its
connections within a few seconds, and the first close sends the request on to the new
coordinator. The cost is a reconnect for a producer's first transaction after 3 to 5 s
without one; a busy producer keeps its connections.
"""


def start_transactional_producer(
    kafka: KafkaSettings, transactional_id: str, transaction_timeout: timedelta
) -> Producer:
    """A transactional producer, its transactions initialized.

    Initializing fences an earlier producer with the same id and aborts its open
    transaction at once, which is why a restarted process should keep its id.
    """
    producer = Producer(transactional_producer_config(kafka, transactional_id, transaction_timeout))
    try:
        producer.init_transactions(30)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot start transactions as {transactional_id}: {exc}"
        ) from exc
    return producer


def producer_config(kafka: KafkaSettings) -> dict[str, Any]:
    """An idempotent, non-transactional producer (the client's starts and signals).

    A request the brokers do not acknowledge fails within a few connect timeouts
    instead of librdkafka's five minutes, so a command never hangs on a lost broker.
    """
    return {
        **kafka.client_config(),
        "request.timeout.ms": max(1000, int(kafka.connect_timeout * 1000)),
        "message.timeout.ms": max(3000, int(kafka.connect_timeout * 3000)),
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
    }
