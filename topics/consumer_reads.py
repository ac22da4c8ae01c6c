"""Reading from a consumer: a batch without waiting for it to fill, or a whole partition."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, Message, TopicPartition


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
        for message in consumer.consume(1000, 1.0):
            if message.error() is None:
                yield message
