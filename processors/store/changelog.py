"""Producing a batch's staged store changes to the changelog topic, inside a Kafka transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from confluent_kafka import KafkaError, Message, Producer

from processors.store.errors import StoreError


class ChangelogWriteError(StoreError):
    """A changelog record was not delivered, so the batch must not reach the store."""

    def __init__(self, message: str, *, topic: str, partition: int) -> None:
        super().__init__(message, partition=partition)
        self.topic = topic


class ChangelogWriter:
    """Sends staged changes to ``topic`` and remembers the last delivered offset per partition.

    The record for a key written while processing source partition ``p`` goes to changelog
    partition ``p``, keyed by the store key, its value the new value (``None``, a tombstone,
    for a delete). After the Kafka transaction commits (which waits for every delivery),
    :meth:`take_offsets` gives the offsets to write beside the data in each store.
    """

    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self._last_offsets: dict[int, int] = {}
        self._failures: list[tuple[int, KafkaError]] = []

    def produce(self, partition: int, changes: Mapping[bytes, bytes | None]) -> None:
        """Queue one changelog record per change, on the producer's open transaction."""
        produce = self._producer.produce
        last = len(changes) - 1
        for index, (key, value) in enumerate(changes.items()):
            # Only the last record's offset is needed (a partition's offsets grow with each
            # record), and a record that fails aborts the whole transaction anyway: so one
            # delivery report per partition and batch instead of one per record.
            on_delivery = self._on_delivery if index == last else None
            while True:
                try:
                    produce(self.topic, value, key, partition=partition, on_delivery=on_delivery)
                    break
                except BufferError:
                    # The local queue is full: serve delivery reports to make room.
                    self._producer.poll(0.1)

    def take_offsets(self) -> dict[int, int]:
        """The last delivered offset per changelog partition since the previous call.

        Raises :class:`ChangelogWriteError` if a partition's last record failed, since its
        change is not in the log and must not be written to the store. (An earlier record
        that fails puts the transaction in error, so its commit raises before this runs.)
        """
        self._producer.poll(0)
        offsets, self._last_offsets = self._last_offsets, {}
        failures, self._failures = self._failures, []
        if failures:
            partition, error = failures[0]
            raise ChangelogWriteError(
                f"{len(failures)} changelog record(s) not delivered, first: {error}",
                topic=self.topic,
                partition=partition,
            )
        return offsets

    def discard(self) -> None:
        """Forget what was produced (the Kafka transaction was aborted)."""
        self._producer.poll(0)
        self._last_offsets = {}
        self._failures = []

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        partition = cast("int", message.partition())
        if error is not None:
            self._failures.append((partition, error))
            return
        offset = cast("int", message.offset())
        if offset > self._last_offsets.get(partition, -1):
            self._last_offsets[partition] = offset
