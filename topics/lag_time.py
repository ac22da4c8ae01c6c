"""How far behind a consumer group is in time: per partition, records behind and their age.

A lag in records says little to an operator ("12,000 behind" is fine for one group and
an outage for another); the age of the oldest record a group has not processed yet is
what an objective like "lag < 60 s" is about. The age is read from the record at the
group's committed offset (``read_committed``, as the runtime's consumers read), so it
is the time that record has waited, whether or not any member of the group is alive.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from topics.admin import TopicAdminError
from topics.lag import consumer_lag

_PROBE_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class PartitionLagTime:
    """One partition of one group: how many records it has not processed and for how long.

    ``records`` counts committed records between the group's committed offset and the
    partition's last stable offset (a group that never committed counts the whole log,
    as it would start from the earliest offset). ``age_seconds`` is now minus the
    timestamp of the oldest of them, 0 when the group is caught up;
    ``oldest_timestamp_ms`` is that record's timestamp (None when caught up).
    """

    group: str
    topic: str
    partition: int
    committed: int | None
    end_offset: int
    records: int
    age_seconds: float
    oldest_timestamp_ms: int | None


def group_lag(
    config: Mapping[str, Any],
    group: str,
    topics: Sequence[str],
    *,
    now_ms: int | None = None,
    timeout_s: float = 10.0,
) -> list[PartitionLagTime]:
    """The lag of ``group`` on every partition of ``topics``, in records and in seconds.

    ``config`` is a confluent-kafka client config (bootstrap servers, security, and a
    ``logger`` if librdkafka's lines should go to Python logging). ``now_ms`` is the
    wall clock the ages are measured against (default: this host's). Partitions come in
    topic then partition order. A group with no live member is read all the same: its
    committed offsets stay, and its lag grows as records arrive — the case an alert
    is for. Raises ``TopicAdminError`` when Kafka does not answer within ``timeout_s``
    or a topic is missing.

    Used by the worker's lag metrics, ``sagas lag`` and the built-in dashboard.
    """
    deadline = time.monotonic() + timeout_s
    lags = consumer_lag(config, group, topics, timeout_s=timeout_s)
    positions = {
        (lag.topic, lag.partition): max(lag.committed or 0, lag.log_start)
        for lag in lags
        if lag.lag > 0
    }
    oldest = _first_timestamps(config, group, positions, deadline) if positions else {}
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    result = []
    for lag in lags:
        stamp = oldest.get((lag.topic, lag.partition))
        age = 0.0 if stamp is None else max(now - stamp, 0) / 1000
        result.append(
            PartitionLagTime(
                group, lag.topic, lag.partition, lag.committed, lag.end_offset, lag.lag, age, stamp
            )
        )
    return result


def _first_timestamps(
    config: Mapping[str, Any],
    group: str,
    positions: Mapping[tuple[str, int], int],
    deadline: float,
) -> dict[tuple[str, int], int]:
    """The timestamp of the first committed record at or after each position.

    A partition whose only records past the position are transaction markers or
    aborted records ends without one, and is absent from the answer: nothing waits there.
    """
    probe = Consumer(
        {
            **config,
            # Never joins nor commits: it only reads, at offsets it is told.
            "group.id": f"{group}.lag-probe",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            # One record per partition is all it needs; do not prefetch megabytes.
            "queued.min.messages": 1,
            "max.partition.fetch.bytes": 65536,
            "fetch.wait.max.ms": 50,
        }
    )
    try:
        probe.assign([TopicPartition(t, p, offset) for (t, p), offset in positions.items()])
        pending = set(positions)
        found: dict[tuple[str, int], int] = {}
        while pending:
            if time.monotonic() >= deadline:
                raise TopicAdminError(
                    f"cannot read the oldest unprocessed records of group {group}:"
                    f" Kafka did not return {len(pending)} of them in time",
                    operation="read oldest record",
                    group=group,
                    retriable=True,
                )
            message = probe.poll(_PROBE_POLL_S)
            if message is None:
                continue
            topic, partition = message.topic(), message.partition()
            key = (topic or "", -1 if partition is None else partition)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(key)
                    continue
                raise TopicAdminError(
                    f"cannot read the oldest unprocessed record of group {group}: {error.str()}",
                    operation="read oldest record",
                    group=group,
                    topic=topic,
                    code=error.name(),
                    retriable=error.retriable(),
                )
            if key in pending:
                pending.discard(key)
                found[key] = message.timestamp()[1]
                # Stop fetching this partition: one record is the answer.
                probe.pause([TopicPartition(key[0], key[1])])
        return found
    except KafkaException as exc:
        raise TopicAdminError(
            f"cannot read the oldest unprocessed records of group {group}: {exc}",
            operation="read oldest record",
            group=group,
        ) from exc
    finally:
        probe.close()
