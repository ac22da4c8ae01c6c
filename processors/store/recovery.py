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
from processors.store.errors import ChangelogRestoreError, StoreError
from topics.consumer_reads import FAILOVER_WAIT_SECONDS, watermarks

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10_000
"""Records consumed, and written to the store in one batch, at a time."""

DEFAULT_TIMEOUT = timedelta(minutes=10)
"""How long a restore may take before it is declared stuck."""

# consume() waits this long unless a whole chunk arrives, even past the end of the log, so
# it is short: the end event and a position past the last marker come with the last records.
_CONSUME_WAIT_SECONDS = 0.05

# How often to look again whether an open transaction still holds the stable end back.
_STABLE_POLL_SECONDS = 0.05

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
    """The stable end (last stable offset) of the changelog partition it read up to."""

    records: int
    """Changelog records applied (aborted ones never reach the store)."""

    rebuilt: bool
    """Whether the store was cleared first because its offset lay outside the log."""

    seconds: float


class ChangelogRestorer:
    """Restores partition stores from one changelog topic, reading committed records only.

    It owns two consumers that never join a group nor commit: one reads the changelog with
    ``isolation.level=read_committed`` (aborted records are skipped, the end is the last
    stable offset); the other asks for the uncommitted high watermark, to tell a store that
    is ahead of the log (the topic was recreated or truncated: it is rebuilt) from one whose
    records sit behind a transaction still open on the partition (it waits for it to end).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: timedelta = DEFAULT_TIMEOUT,
    ) -> None:
        """``config`` holds the librdkafka connection settings (bootstrap servers, security)."""
        if chunk_size < 1:
            raise StoreError(f"chunk_size must be >= 1, got {chunk_size}", non_retryable=True)
        self.topic = topic
        self._chunk_size = chunk_size
        self._timeout = timeout
        settings = {"group.id": f"{topic}.restore", **config, **_RESTORE_CONSUMER_SETTINGS}
        self._consumer = Consumer(settings)
        self._uncommitted = Consumer({**settings, "isolation.level": "read_uncommitted"})

    def restore(self, store: PartitionStore, partition: int | None = None) -> RestoreResult:
        """Bring ``store`` up to the committed end of changelog ``partition`` (default: its own).

        Records are applied from the stored offset + 1, one store write per consumed chunk
        with the offset of its last record beside the data, so that an interrupted restore
        resumes where it stopped.
        """
        partition = store.partition if partition is None else partition
        started = time.monotonic()
        deadline = started + self._timeout.total_seconds()
        low, stable = self._watermarks(self._consumer, partition)
        stored = store.changelog_offset()
        rebuilt = False
        if stored is not None and (stored + 1 < low or stored >= stable):
            high = self._watermarks(self._uncommitted, partition)[1]
            if stored + 1 < low or stored >= high:
                logger.warning(
                    "store offset %d of %s[%d] lies outside the changelog [%d, %d); rebuilding",
                    stored,
                    self.topic,
                    partition,
                    low,
                    high,
                )
                store.clear()
                stored = None
                rebuilt = True
            else:
                stable = self._await_stable(partition, stored, stable, deadline)
        start = low if stored is None else stored + 1
        records = 0
        if start < stable:
            records = self._consume_into(store, partition, start, stable, deadline)
        result = RestoreResult(
            topic=self.topic,
            partition=partition,
            start_offset=start,
            end_offset=stable,
            records=records,
            rebuilt=rebuilt,
            seconds=time.monotonic() - started,
        )
        logger.info(
            "restored %s[%d] from offset %d to %d: %d record(s) in %.3fs",
            self.topic,
            partition,
            start,
            stable,
            records,
            result.seconds,
        )
        return result

    def close(self) -> None:
        """Close both consumers."""
        self._consumer.close()
        self._uncommitted.close()

    def __enter__(self) -> ChangelogRestorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _watermarks(self, consumer: Consumer, partition: int) -> tuple[int, int]:
        try:
            # A read_committed consumer is answered the last stable offset as high mark.
            return watermarks(
                consumer,
                TopicPartition(self.topic, partition),
                timeout=min(self._timeout.total_seconds(), FAILOVER_WAIT_SECONDS),
            )
        except KafkaException as exc:
            raise ChangelogRestoreError(
                f"cannot read the changelog's watermarks: {exc}",
                topic=self.topic,
                partition=partition,
            ) from exc

    def _await_stable(self, partition: int, stored: int, stable: int, deadline: float) -> int:
        # The store holds records past the stable end: they were committed (the store is
        # written only after its transaction commits), but a transaction opened before
        # them is still open, or the commit markers are still being written. Reading to
        # the stable end now would leave the store ahead of what is read.
        logger.info(
            "changelog %s[%d] is stable only below offset %d, the store holds %d: waiting",
            self.topic,
            partition,
            stable,
            stored,
        )
        while True:
            stable = self._watermarks(self._consumer, partition)[1]
            if stable > stored:
                return stable
            if time.monotonic() >= deadline:
                raise ChangelogRestoreError(
                    f"a transaction left open on the changelog keeps its stable end at "
                    f"{stable}, at or below the stored offset {stored}",
                    topic=self.topic,
                    partition=partition,
                    offset=stored,
                )
            time.sleep(_STABLE_POLL_SECONDS)

    def _consume_into(
        self, store: PartitionStore, partition: int, start: int, end: int, deadline: float
    ) -> int:
        consumer = self._consumer
        target = TopicPartition(self.topic, partition, start)
        consumer.assign([target])
        records = 0
        last = start - 1
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChangelogRestoreError(
                        f"restore stalled: reached offset {last} of {end}",
                        topic=self.topic,
                        partition=partition,
                        offset=last,
                    )
                messages = consumer.consume(self._chunk_size, min(remaining, _CONSUME_WAIT_SECONDS))
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
                                topic=self.topic,
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
                            topic=self.topic,
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
