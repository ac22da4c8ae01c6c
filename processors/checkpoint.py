"""The saga processor's checkpoint: one batch's output, offsets and state, committed in order.

What a crash may interrupt decides the order: Kafka holds the truth, so everything goes
into one Kafka transaction first, and the local store is written only once that has
committed. A crash before the commit leaves the store as it was (the inputs are read
again and give the same decisions); a crash after it is repaired on restart by replaying
the changelog from the offset the store holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from processors.outgoing_records import Outgoing
from processors.saga_batch import PartitionBatch
from processors.store.changelog import ChangelogWriter
from topics.record_limits import RecordRefusedError

RECORD_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_MSG,
    }
)
"""Produce errors tied to one record: the batch is retried without its workflow."""

_TIMEOUT_S = 30

DeliveryReport = Callable[[KafkaError | None, Message], None]
OffsetsSender = Callable[[list[TopicPartition], object], None]
"""Adds consumed offsets, with the group metadata, to the open transaction."""


class TransactionalProducer(Protocol):
    """What the checkpoint needs of confluent-kafka's transactional ``Producer``."""

    def begin_transaction(self) -> None: ...

    def produce(self, topic: str, value: bytes | None = ..., key: bytes | None = ..., *,
                partition: int = ..., headers: list[tuple[str, str | bytes | None]] | None = ...,
                on_delivery: DeliveryReport | None = ...) -> None: ...  # fmt: skip

    def poll(self, timeout: float = ...) -> int: ...

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: object, timeout: float = ...
    ) -> None: ...

    def commit_transaction(self, timeout: float = ...) -> None: ...

    def abort_transaction(self, timeout: float = ...) -> None: ...


class Checkpoint:
    """Commits the batches of one poll: their records, changelog and offsets, then the store."""

    def __init__(
        self,
        producer: TransactionalProducer,
        changelog: ChangelogWriter,
        on_delivery: DeliveryReport,
        *,
        send_offsets: OffsetsSender | None = None,
    ) -> None:
        """``on_delivery`` hears every output record's delivery report (the refused ones
        name the workflow to retry the batch without); ``send_offsets`` does step 4 (by
        default the producer's ``send_offsets_to_transaction``)."""
        self._producer = producer
        self._changelog = changelog
        self._on_delivery = on_delivery
        self._send_offsets = send_offsets or self._send_offsets_directly

    def commit(
        self,
        batches: Mapping[int, PartitionBatch],
        offsets: Sequence[TopicPartition],
        group_metadata: object,
    ) -> None:
        """Commit finished ``batches`` (by partition) and the consumed ``offsets``.

        1. begin the Kafka transaction;
        2. produce every batch's records: decisions, commands, status, DLQ;
        3. produce every batch's staged store changes to its changelog partition;
        4. send the consumed offsets to the transaction, with the group metadata;
        5. commit the transaction;
        6. write each partition's staged changes to its local store, in one write with
           the offset of its last changelog record.

        Steps 1-5 raise ``KafkaException`` or :class:`RecordRefusedError` (or what
        ``send_offsets`` raises) with nothing written locally: the caller then calls
        :meth:`abort` and rewinds its consumer.
        """
        producer = self._producer
        # 1.
        producer.begin_transaction()
        for partition, batch in batches.items():
            # 2.
            produce_all(producer, batch.outgoing, self._on_delivery)
            # 3.
            try:
                self._changelog.produce(partition, batch.txn.changes())
            except KafkaException as exc:
                raise RecordRefusedError(
                    f"the changelog record was refused: {exc}", topic=self._changelog.topic,
                    key=None,
                ) from exc  # fmt: skip
        # 4.
        if offsets:
            self._send_offsets(list(offsets), group_metadata)
        # 5.
        producer.commit_transaction(_TIMEOUT_S)
        # 6.
        committed = self._changelog.take_offsets()
        for partition, batch in batches.items():
            batch.txn.commit(committed.get(partition))

    def _send_offsets_directly(self, offsets: list[TopicPartition], metadata: object) -> None:
        self._producer.send_offsets_to_transaction(offsets, metadata, _TIMEOUT_S)

    def abort(self, batches: Mapping[int, PartitionBatch]) -> None:
        """Abort the transaction and drop what the batches staged: nothing reached the store."""
        self._producer.abort_transaction(_TIMEOUT_S)
        # Reports of the aborted records (purged or failed) must not be taken for the
        # next transaction's.
        self._producer.poll(0)
        self._changelog.discard()
        for batch in batches.values():
            batch.txn.discard()


def produce_all(
    producer: TransactionalProducer, records: list[Outgoing], on_delivery: DeliveryReport
) -> None:
    """Produce ``records`` on the open transaction; ``RecordRefusedError`` names a record
    the producer itself refused (too large, invalid)."""
    produce = producer.produce
    for record in records:
        try:
            try:
                produce(record.topic, record.value, record.key, partition=record.partition,
                        headers=_headers(record), on_delivery=on_delivery)  # fmt: skip
            except BufferError:
                producer.poll(0.05)
                produce(record.topic, record.value, record.key, partition=record.partition,
                        headers=_headers(record), on_delivery=on_delivery)  # fmt: skip
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not isinstance(error, KafkaError) or error.code() not in RECORD_ERRORS:
                # Not this record's fault: an earlier record's failure (reported through
                # its delivery report) has left the transaction to be aborted.
                raise
            raise RecordRefusedError(
                f"the producer refused a record of {record.topic}: {exc}",
                topic=record.topic,
                key=record.key,
            ) from exc


def _headers(record: Outgoing) -> list[tuple[str, str | bytes | None]] | None:
    return list(record.headers) if record.headers is not None else None
