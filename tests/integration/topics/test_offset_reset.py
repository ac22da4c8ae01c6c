from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from sagas.errors import ConfigurationError
from tests.integration.topics.topic_setup import create_topic, produce
from topics.lag import consumer_lag
from topics.offset_reset import (
    GroupActiveError,
    InvalidOffsetError,
    OffsetChange,
    reset_offsets,
)

pytestmark = pytest.mark.kafka

BASE_MS = 1_700_000_000_000


def _committed(config: dict[str, Any], group: str, topic: str) -> list[int | None]:
    return [p.committed for p in consumer_lag(config, group, [topic])]


def _commit(config: dict[str, Any], group: str, offsets: list[TopicPartition]) -> None:
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


@pytest.fixture
def consumed_topic(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> tuple[str, str]:
    """A two-partition topic with records one second apart, fully committed by a group."""
    topic, group = unique_name("events"), unique_name("group")
    create_topic(kafka_config, topic, 2)
    records = [(0, b"a"), (0, b"b"), (0, b"c"), (1, b"d"), (1, b"e")]
    produce(kafka_config, topic, records, timestamps=[BASE_MS + i * 1000 for i in range(5)])
    _commit(kafka_config, group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 2)])
    return topic, group


def test_reset_to_earliest(kafka_config: dict[str, Any], consumed_topic: tuple[str, str]) -> None:
    topic, group = consumed_topic
    changes = reset_offsets(kafka_config, group, topic, "earliest")
    assert changes == [OffsetChange(topic, 0, 3, 0), OffsetChange(topic, 1, 2, 0)]
    assert _committed(kafka_config, group, topic) == [0, 0]


def test_reset_to_latest_for_a_new_group(
    kafka_config: dict[str, Any], consumed_topic: tuple[str, str], unique_name: Callable[[str], str]
) -> None:
    topic, _ = consumed_topic
    fresh = unique_name("fresh")
    changes = reset_offsets(kafka_config, fresh, topic, "latest")
    assert changes == [OffsetChange(topic, 0, None, 3), OffsetChange(topic, 1, None, 2)]
    assert _committed(kafka_config, fresh, topic) == [3, 2]


def test_reset_to_a_time(kafka_config: dict[str, Any], consumed_topic: tuple[str, str]) -> None:
    topic, group = consumed_topic
    # Records: p0 at +0s, +1s, +2s; p1 at +3s, +4s.
    at = datetime.fromtimestamp((BASE_MS + 1500) / 1000, tz=UTC)
    reset_offsets(kafka_config, group, topic, at)
    assert _committed(kafka_config, group, topic) == [2, 0]
    after_everything = datetime.fromtimestamp((BASE_MS + 60_000) / 1000, tz=UTC)
    reset_offsets(kafka_config, group, topic, after_everything)
    assert _committed(kafka_config, group, topic) == [3, 2]


def test_reset_to_explicit_offsets_leaves_other_partitions(
    kafka_config: dict[str, Any], consumed_topic: tuple[str, str]
) -> None:
    topic, group = consumed_topic
    assert reset_offsets(kafka_config, group, topic, {0: 1}) == [OffsetChange(topic, 0, 3, 1)]
    assert _committed(kafka_config, group, topic) == [1, 2]


@pytest.mark.parametrize(
    ("offsets", "problem"),
    [
        ({0: 4}, r"offset 4 of partition 0 is outside its log \[0, 3\]"),
        ({0: -1}, r"offset -1 of partition 0 is outside its log"),
        ({7: 0}, "partition 7 does not exist"),
        ({}, "no offsets given"),
    ],
)
def test_explicit_offsets_outside_the_log_are_refused(
    kafka_config: dict[str, Any],
    consumed_topic: tuple[str, str],
    offsets: dict[int, int],
    problem: str,
) -> None:
    topic, group = consumed_topic
    with pytest.raises(InvalidOffsetError, match=problem):
        reset_offsets(kafka_config, group, topic, offsets)
    assert _committed(kafka_config, group, topic) == [3, 2]


def test_naive_time_is_refused(
    kafka_config: dict[str, Any], consumed_topic: tuple[str, str]
) -> None:
    topic, group = consumed_topic
    with pytest.raises(ConfigurationError, match="has no timezone"):
        reset_offsets(kafka_config, group, topic, datetime(2026, 1, 1))


@contextmanager
def _member_of(config: dict[str, Any], group: str, topic: str) -> Iterator[None]:
    """A consumer that has joined ``group`` and holds an assignment until the block ends."""
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        for _ in range(60):
            consumer.poll(0.5)
            if consumer.assignment():
                break
        assert consumer.assignment()
        yield
    finally:
        consumer.close()


def test_active_group_is_refused_then_reset_once_stopped(
    kafka_config: dict[str, Any], consumed_topic: tuple[str, str]
) -> None:
    topic, group = consumed_topic
    with _member_of(kafka_config, group, topic):
        with pytest.raises(GroupActiveError, match="stop its consumers") as caught:
            reset_offsets(kafka_config, group, topic, "earliest")
        assert caught.value.group == group
        assert caught.value.members == 1
        assert _committed(kafka_config, group, topic) == [3, 2]
    reset_offsets(kafka_config, group, topic, "earliest")
    assert _committed(kafka_config, group, topic) == [0, 0]
