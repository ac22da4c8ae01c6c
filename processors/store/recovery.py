"""Restoring a partition store from its changelog topic before the partition is processed."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from processors.store.base import PartitionStore
from processors.store.errors import ChangelogRestoreError

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10_000
"""Records consumed, and written to the store in one batch, at a time."""

DEFAULT_TIMEOUT = timedelta(minutes=10)
"""How long a restore may take before it is declared stuck."""

# consume() waits this long unless a whole chunk arrives, even past the end of the log, so
# it is short: the end event and a position past the last marker come with the last records.
_CONSUME_WAIT_SECONDS = 0.05

# Settings a restore consumer needs whatever the caller's connection settings say.
_RESTORE_CONSUMER_SETTINGS: dict[str, Any] = {
    "isolation.level": "read_committed",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
    # Large fetches: a restore reads a partition start to end as fast as it can.
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
    "fetch.wait.max.ms": 50,
}


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What one restore did."""

    topic: str
    partition: int
    start_offset: int
    """The first changelog offset read (the stored offset + 1, or the log start)."""

    end_offset: int
    """The committed end of the changelog partition the restore read up to."""

    records: int
    """Changelog records applied (aborted ones never reach the store)."""

    rebuilt: bool
    """Whether the store was cleared first because its offset lay outside the log."""

    seconds: float


def restore_partition(
    consumer: Consumer,
    topic: str,
    partition: int,
    store: PartitionStore,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> RestoreResult:
    """Bring ``store`` up to the committed end of changelog ``topic``/``partition``.

    ``consumer`` must read with ``isolation.level=read_committed`` (as the consumers of
    :class:`ChangelogRestorer` do), so that records of aborted transactions are skipped and
    the end is the last stable offset. Records are applied from the stored offset + 1, one
    store write per consumed chunk with the offset of its last record beside the data, so
    an interrupted restore resumes where it stopped. A store whose offset lies outside the
    log (the topic was recreated or truncated) is cleared and rebuilt from the log start.
    The consumer's assignment is replaced by the changelog partition and removed at the end.
    """
    if chunk_size < 1:
        raise ChangelogRestoreError(
            f"chunk_size must be >= 1, got {chunk_size}", topic=topic, partition=partition
        )
    started = time.monotonic()
    low, high = _watermarks(consumer, topic, partition, timeout)
    stored = store.changelog_offset()
    rebuilt = stored is not None and (stored >= high or stored + 1 < low)
    if rebuilt:
        logger.warning(
            "store offset %s of %s[%d] lies outside the changelog [%d, %d); rebuilding it",
            stored,
            topic,
            partition,
            low,
            high,
        )
        store.clear()
        stored = None
    start = low if stored is None else stored + 1
    records = 0
    if start < high:
        records = _consume_into(
            consumer,
            topic,
            partition,
            store,
            start,
            high,
            chunk_size,
            started + timeout.total_seconds(),
        )
    result = RestoreResult(
        topic=topic,
        partition=partition,
        start_offset=start,
        end_offset=high,
        records=records,
        rebuilt=rebuilt,
        seconds=time.monotonic() - started,
    )
    logger.info(
        "restored %s[%d] from offset %d to %d: %d record(s) in %.3fs",
        topic,
        partition,
        start,
        high,
        records,
        result.seconds,
    )
    return result


def _watermarks(
    consumer: Consumer, topic: str, partition: int, timeout: timedelta
) -> tuple[int, int]:
    try:
        # With read_committed the broker answers the last stable offset as the high mark.
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout.total_seconds(), cached=False
        )
    except KafkaException as exc:
        raise ChangelogRestoreError(
            f"cannot read the changelog's watermarks: {exc}", topic=topic, partition=partition
        ) from exc
    return int(low), int(high)


def _consume_into(
    consumer: Consumer,
    topic: str,
    partition: int,
    store: PartitionStore,
    start: int,
    end: int,
    chunk_size: int,
    deadline: float,
) -> int:
    target = TopicPartition(topic, partition, start)
    consumer.assign([target])
    records = 0
    last = start - 1
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChangelogRestoreError(
                    f"restore stalled: reached offset {last} of {end}",
                    topic=topic,
                    partition=partition,
                    offset=last,
                )
            messages = consumer.consume(chunk_size, min(remaining, _CONSUME_WAIT_SECONDS))
            changes: dict[bytes, bytes | None] = {}
            last_record: Message | None = None
            reached_end = False
            errors = 0
            for message in messages:
                error = message.error()
                if error is None:
                    key = message.key()
                    if key is None:
                        raise ChangelogRestoreError(
                            "a changelog record has no key; the topic holds foreign records",
                            topic=topic,
                            partition=partition,
                            offset=message.offset(),
                        )
                    changes[key] = message.value()
                    last_record = message
                elif error.code() == KafkaError._PARTITION_EOF:
                    errors += 1
                    # The end event carries the next fetch offset, which counts the
                    # transaction markers that never reach the application.
                    reached_end = cast("int", message.offset()) >= end
                else:
                    raise ChangelogRestoreError(
                        f"cannot read the changelog: {error}",
                        topic=topic,
                        partition=partition,
                        offset=last,
                    ) from KafkaException(error)
            if last_record is not None:
                last = cast("int", last_record.offset())
                store.write(changes, last)
                records += len(messages) - errors
            if reached_end or last >= end - 1 or _position(consumer, target) >= end:
                return records
    finally:
        consumer.unassign()


def _position(consumer: Consumer, target: TopicPartition) -> int:
    [position] = consumer.position([TopicPartition(target.topic, target.partition)])
    # Before anything is consumed the position is a negative sentinel (OFFSET_INVALID).
    return position.offset


class ChangelogRestorer:
    """Owns a read_committed consumer and restores partition stores from one changelog topic."""

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: timedelta = DEFAULT_TIMEOUT,
    ) -> None:
        """``config`` holds the librdkafka connection settings (bootstrap servers, security)."""
        self.topic = topic
        self._chunk_size = chunk_size
        self._timeout = timeout
        settings = {"group.id": f"{topic}.restore", **config, **_RESTORE_CONSUMER_SETTINGS}
        self._consumer = Consumer(settings)

    def restore(self, store: PartitionStore, partition: int | None = None) -> RestoreResult:
        """Restore ``store`` from changelog partition ``partition`` (default: the store's own)."""
        return restore_partition(
            self._consumer,
            self.topic,
            store.partition if partition is None else partition,
            store,
            chunk_size=self._chunk_size,
            timeout=self._timeout,
        )

    def close(self) -> None:
        """Close the consumer (it never joined a group nor committed anything)."""
        self._consumer.close()

    def __enter__(self) -> ChangelogRestorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
