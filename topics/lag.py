"""How far a consumer group is behind on its topics, per partition: committed vs end offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from topics.admin import admin_client
from topics.offset_reads import Isolation, committed_offsets, topic_partitions, watermarks


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition's position for a group: what it committed, where the log ends, the gap.

    ``committed`` is None when the group never committed on this partition;
    ``lag`` then counts every record still in the log, as a group starting from
    the earliest offset would read them.
    """

    topic: str
    partition: int
    committed: int | None
    log_start: int
    end_offset: int
    lag: int


def consumer_lag(
    config: Mapping[str, Any],
    group: str,
    topics: Sequence[str],
    *,
    isolation: Isolation = "read_committed",
    timeout_s: float = 10.0,
) -> list[PartitionLag]:
    """The lag of ``group`` on every partition of ``topics``, in topic then partition order.

    ``config`` is a confluent-kafka client config (bootstrap servers, security).

    With ``read_committed`` (the default, as kafka-sagas' consumers read), the
    end of a partition is its last stable offset, so records of a transaction
    still open do not count as lag; ``read_uncommitted`` uses the high
    watermark. A transaction's commit marker takes an offset too; a group that
    commits its consumer's position (as librdkafka's ``commit()`` does) is past
    it, so a caught-up group shows a lag of 0.
    """
    client = admin_client(config)
    partitions = topic_partitions(client, topics, timeout_s)
    committed = committed_offsets(config, group, partitions, timeout_s)
    starts, ends = watermarks(client, partitions, timeout_s, isolation)
    lags = []
    for tp in partitions:
        key = (tp.topic, tp.partition)
        start, end, done = starts[key], ends[key], committed.get(key)
        # Records before the log start are gone: a group behind them resumes there.
        position = start if done is None else max(done, start)
        lags.append(PartitionLag(tp.topic, tp.partition, done, start, end, max(end - position, 0)))
    return lags
