"""A live, in-memory view of a saga's ``S.status`` topic, for status and result queries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from sagas.client.undecodable import undecodable
from sagas.errors import KafkaUnavailableError, SerializationError
from sagas.events import StatusRecord
from schemas.codecs import Codec
from topics.consumer_reads import poll_batch, watermarks


class StatusView:
    """Tails every partition of one status topic from the start, keeping the latest record
    per workflow. The topic is compacted, so reading it whole stays proportional to the
    number of workflows, not to their history.

    A record it cannot decode stops the view: every later query raises the
    :class:`SerializationError` naming that record, since a status it skipped could be
    the one asked for.
    """

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        codec: Codec[StatusRecord],
        *,
        timeout: float = 30.0,
    ) -> None:
        self.topic = topic
        self._timeout = timeout
        self._error: SerializationError | None = None
        self._consumer = Consumer(
            {
                **config,
                "group.id": f"{topic}.view",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        # confluent-kafka serializes calls on one client handle, and the tail thread is
        # always inside consume(): a watermark query on that consumer can wait forever
        # for its turn. Queries go through a consumer of their own.
        self._offsets = Consumer({**config, "group.id": f"{topic}.view"})
        self._offsets_lock = threading.Lock()
        self._codec = codec
        self._records: dict[str, StatusRecord] = {}
        self._positions: dict[int, int] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._partitions = self._assign()
        self._thread = threading.Thread(target=self._tail, name=f"status-view-{topic}", daemon=True)
        self._thread.start()

    def get(
        self, workflow_id: str, *, fresh: bool = True, timeout: float = 30.0
    ) -> StatusRecord | None:
        """The latest status of ``workflow_id``; with ``fresh``, after catching up to now."""
        if fresh:
            self.catch_up(timeout)
        with self._changed:
            self._raise_error()
            return self._records.get(workflow_id)

    def wait_for(
        self, workflow_id: str, done: Callable[[StatusRecord], bool], timeout: float
    ) -> StatusRecord | None:
        """Block until the status of ``workflow_id`` satisfies ``done``; ``None`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self._raise_error()
                record = self._records.get(workflow_id)
                if record is not None and done(record):
                    return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.5))

    def snapshot(self) -> dict[str, StatusRecord]:
        """Every workflow's latest status seen so far."""
        with self._changed:
            self._raise_error()
            return dict(self._records)

    def _end_of(self, partition: int, deadline: float) -> int:
        tp = TopicPartition(self.topic, partition)
        try:
            # A leader moving is waited out by ``watermarks``, up to the caller's deadline.
            _, high = watermarks(self._offsets, tp, timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            raise KafkaUnavailableError(
                f"cannot read the end of {self.topic}[{partition}]: {exc.args[0]}"
            ) from exc
        return high

    def catch_up(self, timeout: float = 30.0) -> None:
        """Block until everything committed to the topic before this call has been read."""
        targets = {}
        deadline = time.monotonic() + timeout
        with self._offsets_lock:
            for partition in self._partitions:
                targets[partition] = self._end_of(partition, deadline)
        with self._changed:
            while any(self._positions.get(p, 0) < high for p, high in targets.items()):
                self._raise_error()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KafkaUnavailableError(
                        f"reading {self.topic} did not catch up in {timeout}s"
                    )
                self._changed.wait(min(remaining, 0.2))

    def close(self) -> None:
        """Stop tailing and release the consumer."""
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()
        with self._offsets_lock:
            self._offsets.close()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _assign(self) -> list[int]:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=self._timeout)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"cannot read metadata of {self.topic}: {exc}") from exc
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise KafkaUnavailableError(
                f"status topic {self.topic} does not exist; run `sagas topics create` first"
            )
        partitions = sorted(topic.partitions)
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        return partitions

    def _tail(self) -> None:
        decode = self._codec.decode
        while not self._stop.is_set():
            messages = poll_batch(self._consumer, 1000, 0.1)
            positions: dict[int, int] = {}
            records: list[StatusRecord] = []
            for message in messages:
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                if partition is None or offset is None:
                    continue
                positions[partition] = offset + 1
                value = message.value()
                if value is None:
                    continue
                try:
                    records.append(decode(value))
                except SerializationError as exc:
                    with self._changed:
                        self._error = undecodable(
                            self._codec, self.topic, partition, offset, value, exc
                        )
                        self._changed.notify_all()
                    return
            # Positions move past transaction markers too: ask the consumer where it is.
            current = self._consumer.position(
                [TopicPartition(self.topic, p) for p in self._partitions]
            )
            with self._changed:
                for record in records:
                    self._records[record.workflow_id] = record
                for tp in current:
                    if tp.offset >= 0:
                        positions[tp.partition] = max(positions.get(tp.partition, 0), tp.offset)
                for partition, position in positions.items():
                    if position > self._positions.get(partition, 0):
                        self._positions[partition] = position
                self._changed.notify_all()
