"""Reading a saga's event log and dead-letter queue whole, for replay, shadow and reset.

Reads are assign-based and ``read_committed``, with no consumer group: nothing is
committed and no group appears on the cluster, so reading the log leaves no trace
beside the saga's own groups. librdkafka's own lines go through Python logging (as for
every client of the project), to ``sagas.kafka.replay``, which is silent unless logging
is configured to show ``sagas.kafka``: the tools report every failure as one
:class:`KafkaUnavailableError`, and a program calling them gets no raw librdkafka line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from sagas.config import KafkaSettings
from sagas.errors import KafkaUnavailableError
from sagas.kafka_logs import LOGGER_NAME as KAFKA_LOGGER_NAME
from sagas.kafka_logs import KafkaLogBridge, admin_client_config
from topics.consumer_reads import read_range
from topics.dead_letter_headers import (
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TIME,
    HEADER_TOPIC,
    HEADER_WORKFLOW,
    decode_headers,
)
from topics.offset_reads import committed_offsets

CONNECT_TIMEOUT_S = 5.0
"""How long a replay tool waits for the cluster before it says Kafka is unreachable."""

Progress = Callable[[int, int], None]
"""Called with (records read so far, records to read in all)."""

_READER_SETTINGS: dict[str, Any] = {
    "isolation.level": "read_committed",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
    "fetch.wait.max.ms": 50,
}


LOGGER_NAME = f"{KAFKA_LOGGER_NAME}.replay"
"""The logger of the replay tools' librdkafka lines."""


def client_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The connection settings of every replay tool's client: the deployment's, with
    connection attempts bounded by :data:`CONNECT_TIMEOUT_S` and librdkafka's lines to
    :data:`LOGGER_NAME`."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        # Without any handler configured, Python prints warnings to stderr as they are
        # (a fresh broker's "Coordinator load in progress"); this one keeps them out,
        # while a handler configured above it still gets them at the level set there.
        logger.addHandler(logging.NullHandler())
    return {
        **kafka.client_config(),
        "socket.connection.setup.timeout.ms": int(CONNECT_TIMEOUT_S * 1000),
        "logger": KafkaLogBridge(logger),
    }


def check_reachable(kafka: KafkaSettings, topic: str) -> None:
    """Raise :class:`KafkaUnavailableError` within seconds unless the cluster answers and
    holds ``topic``."""
    admin = AdminClient(admin_client_config(client_config(kafka)))
    try:
        found = admin.list_topics(topic, timeout=CONNECT_TIMEOUT_S).topics.get(topic)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {kafka.bootstrap_servers}: {_text(exc)}"
        ) from exc
    if found is None or found.error is not None:
        raise KafkaUnavailableError(f"topic {topic} does not exist on {kafka.bootstrap_servers}")


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """The committed records of one partition at the time it was measured."""

    partition: int
    start: int
    end: int
    """The last stable offset: a reader stops there, and a group set here goes on from it."""


class LogReader:
    """Reads whole partitions of one topic, committed records only."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {**client_config(kafka), "group.id": f"{topic}.replay-reader", **_READER_SETTINGS}
        )

    def ranges(self) -> list[PartitionRange]:
        """Every partition of the topic with its committed range; raises if it is unreachable."""
        try:
            described = self._consumer.list_topics(self.topic, timeout=CONNECT_TIMEOUT_S)
            topic = described.topics.get(self.topic)
            if topic is None or topic.error is not None:
                raise KafkaUnavailableError(f"topic {self.topic} does not exist")
            found = []
            for partition in sorted(topic.partitions):
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=CONNECT_TIMEOUT_S, cached=False
                )
                found.append(PartitionRange(partition, int(low), int(high)))
            return found
        except KafkaException as exc:
            raise KafkaUnavailableError(f"cannot read {self.topic}: {_text(exc)}") from exc

    def read(self, part: PartitionRange) -> Iterator[list[Message]]:
        """The records of ``part``, chunk by chunk, in offset order."""
        try:
            yield from read_range(self._consumer, self.topic, part.partition, part.start, part.end)
        except (KafkaException, TimeoutError) as exc:
            raise KafkaUnavailableError(f"cannot read {self.topic}: {_text(exc)}") from exc

    def close(self) -> None:
        """Release the consumer (it never joined a group)."""
        self._consumer.close()


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """What the dead-letter queue says about one record of the event log."""

    reason: str
    time_ms: int
    workflow_id: str | None


@dataclass(frozen=True, slots=True)
class DeadLetterIndex:
    """The records of ``S.events`` the processor dead-lettered, by (partition, offset);
    and the timers whose firing failed (they have no offset), by workflow."""

    records: Mapping[tuple[int, int], DeadLettered]
    timer_failures: Mapping[str, DeadLettered]


def read_dead_letter_index(
    kafka: KafkaSettings, dlq_topic: str, events_topic: str
) -> DeadLetterIndex:
    """Read the DLQ whole and index what it holds of ``events_topic``."""
    reader = LogReader(kafka, dlq_topic)
    records: dict[tuple[int, int], DeadLettered] = {}
    timers: dict[str, DeadLettered] = {}
    try:
        for part in reader.ranges():
            for chunk in reader.read(part):
                for message in chunk:
                    raw = message.headers()
                    headers = decode_headers(raw if isinstance(raw, list) else None)
                    if headers.get(HEADER_TOPIC) != events_topic:
                        continue
                    letter = DeadLettered(
                        headers.get(HEADER_REASON, "unknown"),
                        int(headers.get(HEADER_TIME, "0") or 0),
                        headers.get(HEADER_WORKFLOW),
                    )
                    offset = int(headers.get(HEADER_OFFSET, "-1") or -1)
                    if offset < 0:
                        if letter.workflow_id is not None:
                            timers[letter.workflow_id] = letter
                        continue
                    records[int(headers.get(HEADER_PARTITION, "0")), offset] = letter
    finally:
        reader.close()
    return DeadLetterIndex(records, timers)


def processed_ends(
    kafka: KafkaSettings, group: str, topic: str, ranges: list[PartitionRange]
) -> dict[int, int]:
    """Per partition, the offset below which ``group`` has processed ``topic``: its committed
    offset, or the log start when it committed none. Every decision in the log answers an
    input below it (they commit in one transaction); the inputs past it wait for the group."""
    try:
        committed = committed_offsets(
            client_config(kafka), group, [TopicPartition(topic, r.partition) for r in ranges],
            CONNECT_TIMEOUT_S * 2,
        )  # fmt: skip
    except KafkaException as exc:
        raise KafkaUnavailableError(f"cannot read {group}'s offsets: {_text(exc)}") from exc
    ends = {}
    for part in ranges:
        offset = committed.get((topic, part.partition))
        ends[part.partition] = part.start if offset is None else min(offset, part.end)
    return ends


def count(ranges: list[PartitionRange]) -> int:
    """How many offsets the ranges span (records, plus transaction markers)."""
    return sum(part.end - part.start for part in ranges)


class RateMeter:
    """Records per second since it was made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def rate(self, records: int) -> float:
        elapsed = time.perf_counter() - self.started
        return records / elapsed if elapsed > 0 else 0.0


def _text(exc: BaseException) -> str:
    error = exc.args[0] if exc.args else exc
    text = getattr(error, "str", None)
    return str(text()) if callable(text) else str(error)
