"""The largest record each topic a processor writes will take, and the check against it.

A record the broker refuses fails the whole Kafka transaction it is in, and the same
inputs would build the same record again after the rewind: so the processor checks every
record before producing it and fails only the workflow that would write it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sagas.errors import SagaError

PRODUCER_DEFAULT_MAX_BYTES = 1_000_000
"""librdkafka's default ``message.max.bytes``."""
BROKER_DEFAULT_MAX_BYTES = 1_048_588
"""Kafka's default ``max.message.bytes`` of a topic."""
RECORD_OVERHEAD_BYTES = 1024
"""Room kept for the record batch header, the record's own framing and varints, so that
a record that passes the check also fits once framed."""


class RecordRefusedError(SagaError):
    """The producer or broker refused one record; ``key`` says whose record it was."""

    def __init__(self, message: str, *, topic: str, key: bytes | None) -> None:
        super().__init__(message)
        self.topic = topic
        self.key = key


def record_size(
    key: bytes | None,
    value: bytes | None,
    headers: tuple[tuple[str, bytes], ...] | None = None,
) -> int:
    """The bytes a record carries: key, value and every header's name and value."""
    size = len(key or b"") + len(value or b"")
    for name, header in headers or ():
        size += len(name.encode()) + len(header or b"")
    return size


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """Per topic, the most bytes a record may carry (key + value + headers).

    A topic's limit is the smaller of its ``max.message.bytes`` and the producer's
    ``message.max.bytes``, less :data:`RECORD_OVERHEAD_BYTES`. A topic not read at
    start is looked up once through ``lookup`` (when given), else takes the default.
    """

    producer_max_bytes: int = PRODUCER_DEFAULT_MAX_BYTES
    topic_max_bytes: Mapping[str, int] = field(default_factory=dict)
    default_topic_max_bytes: int = BROKER_DEFAULT_MAX_BYTES
    lookup: Callable[[str], int | None] | None = None
    _cache: dict[str, int] = field(default_factory=dict, compare=False)

    def limit(self, topic: str) -> int:
        """The most bytes a record of ``topic`` may carry."""
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        topic_max = self.topic_max_bytes.get(topic)
        if topic_max is None and self.lookup is not None:
            topic_max = self.lookup(topic)
        if topic_max is None:
            topic_max = self.default_topic_max_bytes
        limit = max(0, min(topic_max, self.producer_max_bytes) - RECORD_OVERHEAD_BYTES)
        self._cache[topic] = limit
        return limit

    def excess(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes], ...] | None = None,
    ) -> tuple[int, int] | None:
        """``(size, limit)`` if the record is too large for ``topic``, else ``None``."""
        size = record_size(key, value, headers)
        limit = self.limit(topic)
        return (size, limit) if size > limit else None


def producer_max_bytes(config: Mapping[str, Any]) -> int:
    """The ``message.max.bytes`` a producer built from ``config`` enforces."""
    value = config.get("message.max.bytes")
    return int(value) if value is not None else PRODUCER_DEFAULT_MAX_BYTES
