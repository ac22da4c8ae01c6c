"""Reading from a consumer: a batch without waiting for it to fill, or a whole partition."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

FAILOVER_WAIT_SECONDS = 60.0
"""How long a partition may stay without a reachable leader before asking it fails: a
broker died and another replica takes over within seconds."""

_FAILOVER_RETRY_SECONDS = 0.5

# What librdkafka answers about a partition while its leadership moves.
_FAILOVER_CODES = frozenset(
    {
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._DESTROY_BROKER,  # the dead leader's handle, dropped with its metadata
        KafkaError._RESOLVE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)

logger = logging.getLogger(__name__)


def poll_batch(consumer: Consumer, max_records: int, timeout: float) -> list[Message]:
    """Wait up to ``timeout`` s for one record, then take what is already fetched, up to
    ``max_records`` in all.

    ``consume(n, timeout)`` may hold records back until ``n`` are there or the timeout
    has passed (and has changed that across confluent-kafka releases): at every hop of a
    saga that wait would add up. Batches still grow with load, since records keep
    arriving while the previous batch is processed.
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    if max_records <= 1:
        return [first]
    return [first, *consumer.consume(max_records - 1, 0)]


def is_failover(error: object) -> bool:
    """Whether ``error`` is what a partition answers while its leadership moves."""
    return isinstance(error, KafkaError) and (error.code() in _FAILOVER_CODES or error.retriable())


def watermarks(
    consumer: Consumer, tp: TopicPartition, *, timeout: float = FAILOVER_WAIT_SECONDS
) -> tuple[int, int]:
    """The log-start and end offsets of ``tp`` as the broker has them now (with
    ``read_committed``, the end is the last stable offset).

    Until the metadata names a new leader of a partition whose leader died, librdkafka
    answers "unknown partition" or a timeout: that is asked again for up to ``timeout``
    seconds, so a failover does not fail the caller. Raises ``KafkaException`` otherwise.
    """
    give_up = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not is_failover(error) or time.monotonic() >= give_up:
                raise
            logger.warning(
                "%s[%d] has no reachable leader yet (%s): asking again",
                tp.topic,
                tp.partition,
                error,
            )
            time.sleep(_FAILOVER_RETRY_SECONDS)
            _refresh_metadata(consumer, tp.topic)


def _refresh_metadata(consumer: Consumer, topic: str) -> None:
    """Ask the brokers for ``topic``'s metadata again, so the client's cache names its
    partitions' leaders as they are now.

    librdkafka never asks on its own for a partition its cache holds without a leader,
    or with a leader it has since dropped: a watermark query then answers "unknown
    partition" until something else refreshes the cache. A client that subscribes to
    nothing (a restorer, a reader) may see nothing else for minutes; a processor's
    restore stalled 60 s on a changelog partition after its leader was killed and came
    back, while a fresh client read the same partition at once.
    """
    try:
        consumer.list_topics(topic, timeout=_FAILOVER_RETRY_SECONDS * 4)
    except KafkaException as exc:  # no broker answered either: the next query says so
        logger.debug("refreshing the metadata of %s failed: %s", topic, exc)


def read_partition(
    consumer: Consumer, topic: str, partition: int, timeout: float
) -> Iterator[Message]:
    """Every readable record of one partition, from its first retained offset to its end
    as it is when called (with ``read_committed``, the last stable offset).

    The consumer's assignment is replaced by this partition. The end is judged by the
    consumer's position, which also steps over transaction markers and aborted records.
    """
    tp = TopicPartition(topic, partition)
    low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
    if low >= high:
        return
    consumer.assign([TopicPartition(topic, partition, low)])
    while consumer.position([tp])[0].offset < high:
        # poll_batch, not consume(1000, 1.0): that waits out the second on a tail of
        # fewer than 1,000 records, which every small partition has.
        for message in poll_batch(consumer, 1000, 1.0):
            if message.error() is None:
                yield message


def read_range(
    consumer: Consumer, topic: str, partition: int, start: int, end: int, *,
    chunk: int = 10_000, timeout: float = 60.0,
) -> Iterator[list[Message]]:  # fmt: skip
    """The records of one partition from ``start`` up to ``end`` (excluded), in chunks.

    Meant for ``read_committed`` consumers whose ``end`` is the last stable offset: the
    position, which steps over transaction markers and aborted records, says when it is
    reached. Raises ``KafkaException`` on a consume error, ``TimeoutError`` when no
    progress is made for ``timeout`` seconds.
    """
    tp = TopicPartition(topic, partition)
    if start >= end:
        return
    consumer.assign([TopicPartition(topic, partition, start)])
    try:
        stalled_since = time.monotonic()
        while True:
            messages = consumer.consume(chunk, 0.1)
            records = []
            for message in messages:
                error = message.error()
                if error is None:
                    records.append(message)
                elif error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
            if records:
                stalled_since = time.monotonic()
                yield records
            if consumer.position([tp])[0].offset >= end:
                return
            if time.monotonic() - stalled_since > timeout:
                raise TimeoutError(f"reading {topic}[{partition}] made no progress for {timeout}s")
    finally:
        consumer.unassign()
