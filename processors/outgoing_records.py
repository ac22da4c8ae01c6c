"""Records a batch will produce, collected before the Kafka transaction sends them."""

from __future__ import annotations

from dataclasses import dataclass

UNASSIGNED_PARTITION = -1
"""Let the producer's partitioner (murmur2, as Java clients) choose from the key."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce in the current transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = UNASSIGNED_PARTITION
    headers: tuple[tuple[str, bytes], ...] | None = None
