"""Every consumer group of one saga, whether a member is alive, and each one's lag in time.

A saga has one processor group on its event log and one or more worker groups on its
queues' command topics; which worker groups exist depends on how the workers were
deployed (one worker for every queue, or one per queue), so they are found on the
cluster by name. A queue no group has consumed yet is reported under the group
``sagas worker`` would create for all of the saga's queues: every command in it waits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import ConsumerGroupState, KafkaException

from topics.admin import TopicAdminError, admin_client, wait
from topics.lag_time import PartitionLagTime, group_lag
from topics.naming import TopicNames, worker_group_queues

GroupRole = Literal["processor", "steps"]
"""What a group runs: the saga processor, or step workers."""

_NOT_LIVE = frozenset({ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD})


@dataclass(frozen=True, slots=True)
class GroupLagTime:
    """One consumer group of a saga: what it consumes, whether it has members, its lag."""

    saga: str
    group: str
    role: GroupRole
    topics: tuple[str, ...]
    live: bool
    """Whether the group has a live member (it is listed and neither empty nor dead)."""
    partitions: tuple[PartitionLagTime, ...]

    @property
    def records(self) -> int:
        """Records behind, over every partition."""
        return sum(p.records for p in self.partitions)

    @property
    def age_seconds(self) -> float:
        """The age of the oldest unprocessed record over every partition (0: caught up)."""
        return max((p.age_seconds for p in self.partitions), default=0.0)


def saga_lag(
    config: Mapping[str, Any],
    names: TopicNames,
    queues: Iterable[str],
    *,
    now_ms: int | None = None,
    timeout_s: float = 10.0,
) -> list[GroupLagTime]:
    """The lag in records and seconds of every consumer group of the saga ``names`` names.

    ``queues`` are the saga's queues. The processor group comes first, then the worker
    groups by name. Raises ``TopicAdminError`` when Kafka does not answer in time.
    """
    live = _listed_groups(config, timeout_s)
    wanted = sorted(set(queues))
    groups: list[tuple[str, GroupRole, tuple[str, ...]]] = [
        (names.processor_group, "processor", (names.events,))
    ]
    covered: set[str] = set()
    for group in sorted(live):
        served = worker_group_queues(group, names.prefix)
        mine = sorted(set(served or ()) & set(wanted))
        if mine:
            covered.update(mine)
            groups.append((group, "steps", tuple(names.commands(q) for q in mine)))
    rest = sorted(set(wanted) - covered)
    if rest:
        # Also where the default group exists under a digest name (too many queues).
        groups.append((names.worker_group(wanted), "steps", tuple(names.commands(q) for q in rest)))
    return [
        GroupLagTime(
            names.saga,
            group,
            role,
            topics,
            live.get(group, False),
            tuple(group_lag(config, group, topics, now_ms=now_ms, timeout_s=timeout_s)),
        )
        for group, role, topics in groups
    ]


def _listed_groups(config: Mapping[str, Any], timeout_s: float) -> dict[str, bool]:
    """Every consumer group the cluster knows, and whether it has a live member."""
    client = admin_client(config)
    try:
        future = client.list_consumer_groups(request_timeout=timeout_s)
    except KafkaException as exc:
        raise TopicAdminError(
            f"cannot list consumer groups: {exc}", operation="list consumer groups"
        ) from exc
    answer = wait(future, timeout_s, operation="list consumer groups")
    return {listing.group_id: listing.state not in _NOT_LIVE for listing in answer.valid}
