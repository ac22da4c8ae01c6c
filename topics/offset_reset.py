"""Moving an inactive consumer group's committed offsets, the first step of ``sagas replay``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from sagas.errors import ConfigurationError, SagaError
from topics.admin import TopicAdminError, admin_client, until_coordinator_answers, wait
from topics.offset_reads import (
    committed_offsets,
    list_offsets,
    timestamp_spec,
    topic_partitions,
    watermarks,
)

ResetTarget = Literal["earliest", "latest"] | datetime | Mapping[int, int]
"""Where to move a group: the log start, the end, the first record at or after a
(timezone-aware) time, or explicit offsets per partition (others untouched)."""

_INACTIVE = (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD)
# Errors with which Kafka refuses to move the offsets of a group that has members.
_ACTIVE_GROUP_CODES = ("UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "GROUP_SUBSCRIBED_TO_TOPIC")


class GroupActiveError(SagaError):
    """A consumer group still has members, so its offsets cannot be moved under it."""

    def __init__(
        self, group: str, state: str, members: int | None, names: tuple[str, ...] = ()
    ) -> None:
        counted = "" if members is None else f", {members} member(s)"
        named = f": {', '.join(names)}" if names else ""
        super().__init__(
            f"consumer group {group!r} is active ({state}{counted}{named});"
            " stop its consumers first",
        )
        self.group = group
        self.state = state
        self.members = members
        self.names = names
        """Each live member as ``client_id@host``."""


class InvalidOffsetError(ConfigurationError):
    """An explicit offset names a partition that does not exist or lies outside the log."""


@dataclass(frozen=True, slots=True)
class OffsetChange:
    """One partition whose committed offset was moved."""

    topic: str
    partition: int
    before: int | None
    after: int


def reset_offsets(
    config: Mapping[str, Any],
    group: str,
    topic: str,
    to: ResetTarget,
    *,
    timeout_s: float = 30.0,
) -> list[OffsetChange]:
    """Commit new offsets for ``group`` on ``topic``; the group must have no members.

    ``config`` is a confluent-kafka client config (bootstrap servers, security).
    Returns what changed, partition by partition. Raises
    :class:`GroupActiveError` while the group has members, and
    :class:`InvalidOffsetError` for an explicit offset outside a partition's
    log (between its log-start and end offsets, both included).
    """
    client = admin_client(config)
    deadline = time.monotonic() + timeout_s
    _require_inactive(client, group, deadline)
    partitions = topic_partitions(client, [topic], timeout_s)
    before = committed_offsets(config, group, partitions, timeout_s)
    targets = _targets(client, topic, partitions, to, timeout_s)
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p, offset) for p, offset in sorted(targets.items())]
    )

    def alter() -> Any:
        futures = client.alter_consumer_group_offsets([request], request_timeout=timeout_s)
        return wait(futures[group], timeout_s, operation="reset offsets", group=group, topic=topic)

    try:
        answer = until_coordinator_answers(alter, deadline)
    except TopicAdminError as exc:
        if exc.code in _ACTIVE_GROUP_CODES:
            raise GroupActiveError(group, exc.code or "active", None) from exc
        raise
    for tp in answer.topic_partitions:
        if tp.error is not None:
            raise TopicAdminError(
                f"Kafka refused to reset {group}'s offset of {topic}[{tp.partition}]:"
                f" {tp.error.str()}",
                operation="reset offsets",
                topic=topic,
                group=group,
                code=tp.error.name(),
            )
    return [
        OffsetChange(topic, p, before.get((topic, p)), offset)
        for p, offset in sorted(targets.items())
    ]


def require_inactive(config: Mapping[str, Any], group: str, *, timeout_s: float = 30.0) -> None:
    """Raise :class:`GroupActiveError` (naming the live members) while ``group`` has members."""
    _require_inactive(admin_client(config), group, time.monotonic() + timeout_s)


def _require_inactive(client: AdminClient, group: str, deadline: float) -> None:
    def describe() -> Any:
        timeout_s = max(deadline - time.monotonic(), 0.1)
        futures = client.describe_consumer_groups([group], request_timeout=timeout_s)
        return wait(futures[group], timeout_s, operation="describe group", group=group)

    try:
        description = until_coordinator_answers(describe, deadline)
    except TopicAdminError as exc:
        # Newer brokers answer a group that never existed with GROUP_ID_NOT_FOUND:
        # it has no members, so it is as inactive as a group can be.
        if exc.code == "GROUP_ID_NOT_FOUND":
            return
        raise
    if description.state not in _INACTIVE or description.members:
        names = tuple(
            f"{member.client_id}@{member.host.lstrip('/')}" for member in description.members
        )
        raise GroupActiveError(group, description.state.name, len(description.members), names)


def _targets(
    client: AdminClient,
    topic: str,
    partitions: list[TopicPartition],
    to: ResetTarget,
    timeout_s: float,
) -> dict[int, int]:
    """The offset to commit per partition of ``topic``."""
    starts, ends = watermarks(client, partitions, timeout_s, "read_uncommitted")
    if to == "earliest":
        return {p: offset for (_, p), offset in starts.items()}
    if to == "latest":
        return {p: offset for (_, p), offset in ends.items()}
    if isinstance(to, datetime):
        if to.tzinfo is None:
            raise ConfigurationError(
                f"reset time {to.isoformat()} has no timezone; give one (e.g. UTC)"
            )
        time_ms = int(to.timestamp() * 1000)
        found = list_offsets(
            client,
            {TopicPartition(tp.topic, tp.partition): timestamp_spec(time_ms) for tp in partitions},
            timeout_s,
            "read_uncommitted",
        )
        # -1: no record at or after that time, so the group starts at the end.
        return {p: ends[(t, p)] if offset < 0 else offset for (t, p), offset in found.items()}
    if isinstance(to, str):
        raise ConfigurationError(
            f"reset target {to!r} is not 'earliest', 'latest', a datetime or offsets"
        )
    return _explicit(topic, to, starts, ends)


def _explicit(
    topic: str,
    offsets: Mapping[int, int],
    starts: dict[tuple[str, int], int],
    ends: dict[tuple[str, int], int],
) -> dict[int, int]:
    if not offsets:
        raise InvalidOffsetError(f"no offsets given for {topic}")
    problems = []
    for partition, offset in sorted(offsets.items()):
        key = (topic, partition)
        if key not in starts:
            problems.append(f"partition {partition} does not exist")
        elif not starts[key] <= offset <= ends[key]:
            problems.append(
                f"offset {offset} of partition {partition} is outside its log"
                f" [{starts[key]}, {ends[key]}]"
            )
    if problems:
        raise InvalidOffsetError(f"cannot reset offsets on {topic}: {'; '.join(problems)}")
    return dict(offsets)
