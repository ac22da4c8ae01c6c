"""Reading a batch from a consumer without waiting for a batch to fill."""

from __future__ import annotations

from confluent_kafka import Consumer, Message


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
