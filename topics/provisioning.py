"""Creating a saga's topics through the admin API, and refusing to paper over existing drift."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

# confluent-kafka documents these under confluent_kafka.admin but leaves them
# out of its __all__, which strict mypy reads as "not exported".
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from sagas.errors import ConfigurationError
from topics.admin import AdminSource, TopicAdminError, admin_client, cluster_topics, wait
from topics.specs import CLEANUP_POLICY, TopicSpec

_POLL_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class TopicMismatch:
    """One way an existing topic differs from its spec."""

    topic: str
    setting: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, expected {self.expected}"


class TopicMismatchError(ConfigurationError):
    """Existing topics differ from their specs in ways kafka-sagas will not change by itself.

    Fewer partitions than the spec (or than a co-partitioned topic) would break
    the mapping of changelog partitions to event partitions; a different
    ``cleanup.policy`` would lose records or keep them forever. An operator
    decides how to fix either.
    """

    def __init__(self, mismatches: Sequence[TopicMismatch]) -> None:
        listed = "; ".join(str(m) for m in mismatches)
        super().__init__(
            f"{len(mismatches)} existing topic setting(s) differ from the spec, left unchanged:"
            f" {listed}",
            non_retryable=True,
        )
        self.mismatches = tuple(mismatches)


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    """Which topics ``ensure_topics`` created and which already existed."""

    created: tuple[str, ...]
    existing: tuple[str, ...]


def ensure_topics(
    admin: AdminSource, specs: Sequence[TopicSpec], *, timeout_s: float = 30.0
) -> ProvisionReport:
    """Create the topics of ``specs`` that are missing and check the ones that exist.

    Idempotent: running it again creates nothing. Returns once every topic is
    visible in the cluster's metadata with a leader for each partition. Raises
    :class:`TopicMismatchError` (after creating what was missing) when an
    existing topic has fewer partitions than required or another
    ``cleanup.policy``; nothing existing is ever altered.
    """
    client = admin_client(admin)
    deadline = time.monotonic() + timeout_s
    names = {spec.name for spec in specs}
    partitions = _partition_counts(client, timeout_s)
    existing = [spec for spec in specs if spec.name in partitions]
    created: list[str] = []
    # Co-partitioned topics go second, sized from what their partner really has once it
    # exists: metadata can lag a creation, and a partner may have been created meanwhile.
    missing = [spec for spec in specs if spec.name not in partitions]
    first = [spec for spec in missing if not _follows_partner(spec, names)]
    second = [spec for spec in missing if _follows_partner(spec, names)]
    for batch in (first, second):
        existing.extend(spec for spec in batch if spec.name in partitions)
        batch = [spec for spec in batch if spec.name not in partitions]
        if not batch:
            continue
        sized = [(spec, _required_partitions(spec, partitions)) for spec in batch]
        raced = _create(client, sized, _remaining(deadline))
        existing.extend(spec for spec in batch if spec.name in raced)
        created.extend(spec.name for spec in batch if spec.name not in raced)
        ready = {spec.name for spec in existing} | set(created)
        partitions = _wait_until_ready(client, ready, deadline, timeout_s)
    partitions = _wait_until_ready(client, names, deadline, timeout_s)
    mismatches = []
    for spec in specs:
        required = _required_partitions(spec, partitions)
        if partitions[spec.name] < required:
            actual = str(partitions[spec.name])
            mismatches.append(
                TopicMismatch(spec.name, "partitions", f"at least {required}", actual)
            )
    mismatches.extend(_policy_mismatches(client, existing, deadline))
    if mismatches:
        raise TopicMismatchError(mismatches)
    return ProvisionReport(created=tuple(created), existing=tuple(s.name for s in existing))


def _follows_partner(spec: TopicSpec, names: set[str]) -> bool:
    return spec.copartitioned_with is not None and spec.copartitioned_with in names


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.1)


def _partition_counts(client: AdminClient, timeout_s: float) -> dict[str, int]:
    topics = cluster_topics(client, timeout_s)
    return {name: len(topic.partitions) for name, topic in topics.items()}


def _required_partitions(spec: TopicSpec, partitions: dict[str, int]) -> int:
    if spec.copartitioned_with is None:
        return spec.partitions
    return max(spec.partitions, partitions.get(spec.copartitioned_with, 0))


def _create(client: AdminClient, specs: list[tuple[TopicSpec, int]], timeout_s: float) -> list[str]:
    """Create the topics in one request; returns those someone else created first."""
    if not specs:
        return []
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=partitions,
            replication_factor=spec.replication_factor,
            config=dict(spec.configs),
        )
        for spec, partitions in specs
    ]
    futures = client.create_topics(
        new_topics, operation_timeout=timeout_s, request_timeout=timeout_s
    )
    raced = []
    for spec, _ in specs:
        try:
            wait(futures[spec.name], timeout_s, operation="create topic", topic=spec.name)
        except TopicAdminError as exc:
            if exc.code != "TOPIC_ALREADY_EXISTS":
                raise
            raced.append(spec.name)
    return raced


def _policy_mismatches(
    client: AdminClient, specs: Sequence[TopicSpec], deadline: float
) -> list[TopicMismatch]:
    if not specs:
        return []
    topic = ResourceType.TOPIC
    resources = [ConfigResource(topic, spec.name) for spec in specs]
    futures = client.describe_configs(resources, request_timeout=_remaining(deadline))
    mismatches = []
    for spec, resource in zip(specs, resources, strict=True):
        entries = wait(
            futures[resource], _remaining(deadline), operation="describe configs", topic=spec.name
        )
        entry = entries.get(CLEANUP_POLICY)
        actual = entry.value if entry is not None and entry.value is not None else "delete"
        if _policy_set(actual) != _policy_set(spec.cleanup_policy):
            mismatches.append(TopicMismatch(spec.name, CLEANUP_POLICY, spec.cleanup_policy, actual))
    return mismatches


def _policy_set(policy: str) -> frozenset[str]:
    return frozenset(part.strip() for part in policy.split(",") if part.strip())


def _wait_until_ready(
    client: AdminClient, names: set[str], deadline: float, timeout_s: float
) -> dict[str, int]:
    """Poll metadata until every topic is known with a leader for each partition.

    Returns the partition count of every topic in the cluster.
    """
    while True:
        topics = cluster_topics(client, _remaining(deadline))
        missing = sorted(
            name
            for name in names
            if name not in topics
            or topics[name].error is not None
            or not topics[name].partitions
            or any(p.leader < 0 for p in topics[name].partitions.values())
        )
        if not missing:
            return {name: len(topic.partitions) for name, topic in topics.items()}
        if time.monotonic() >= deadline:
            raise TopicAdminError(
                f"topics not ready after {timeout_s:g} s: {', '.join(missing)}",
                operation="wait for topics",
                topic=missing[0],
                retriable=True,
            )
        time.sleep(_POLL_INTERVAL_S)
