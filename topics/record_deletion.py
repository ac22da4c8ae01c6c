"""Deleting every record of a topic (its partitions' log start moved to their end), for
``sagas reset``: the changelog of a state that is to be rebuilt from the beginning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import TopicPartition

from topics.admin import admin_client, wait
from topics.offset_reads import topic_partitions, watermarks


def records_held(config: Mapping[str, Any], topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """How many offsets each partition of ``topic`` spans (its end minus its log start)."""
    client = admin_client(config)
    starts, ends = watermarks(
        client, topic_partitions(client, [topic], timeout_s), timeout_s, "read_uncommitted"
    )
    return {p: ends[(t, p)] - start for (t, p), start in starts.items()}


def delete_all_records(
    config: Mapping[str, Any], topic: str, timeout_s: float = 30.0
) -> dict[int, int]:
    """Delete every record of ``topic``; returns each partition's new log start."""
    client = admin_client(config)
    partitions = topic_partitions(client, [topic], timeout_s)
    _, ends = watermarks(client, partitions, timeout_s, "read_uncommitted")
    request = [
        TopicPartition(tp.topic, tp.partition, ends[(tp.topic, tp.partition)]) for tp in partitions
    ]
    futures = client.delete_records(request, request_timeout=timeout_s)
    return {
        tp.partition: wait(future, timeout_s, operation="delete records", topic=topic).low_watermark
        for tp, future in futures.items()
    }
