"""What a saga's topics look like in the cluster, side by side with their specs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

# confluent-kafka documents these under confluent_kafka.admin but leaves them
# out of its __all__, which strict mypy reads as "not exported".
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from topics.admin import AdminSource, admin_client, cluster_topics, wait
from topics.specs import CLEANUP_POLICY, MIN_INSYNC_REPLICAS, RETENTION_MS, TopicSpec


@dataclass(frozen=True, slots=True)
class TopicSetting:
    """One setting of a topic: what the spec asks (None: anything) and what the cluster has
    (None: no such topic)."""

    name: str
    expected: str | None
    actual: str | None

    @property
    def matches(self) -> bool:
        """Whether the cluster's value satisfies the spec."""
        if self.expected is None:
            return True
        if self.actual is None:
            return False
        if self.name == "partitions":
            return int(self.actual) >= int(self.expected)
        if self.name == CLEANUP_POLICY:
            return _policy_set(self.actual) == _policy_set(self.expected)
        return self.actual == self.expected


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic as it exists (or not) against its spec, setting by setting."""

    name: str
    exists: bool
    settings: tuple[TopicSetting, ...]

    @property
    def matches(self) -> bool:
        """Whether the topic exists and every setting satisfies the spec."""
        return self.exists and all(setting.matches for setting in self.settings)

    def setting(self, name: str) -> TopicSetting:
        """The setting called ``name`` (``partitions``, ``replication.factor``, a config)."""
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise KeyError(name)


def describe_topics(
    admin: AdminSource, specs: Sequence[TopicSpec], *, timeout_s: float = 10.0
) -> list[TopicDescription]:
    """Each topic of ``specs`` as the cluster has it, in the order of ``specs``.

    Partitions match when there are at least as many as the spec (or its
    co-partitioned partner) needs; replication, ``min.insync.replicas``,
    ``cleanup.policy`` and ``retention.ms`` when they equal the spec's.
    """
    client = admin_client(admin)
    deadline = time.monotonic() + timeout_s
    topics = cluster_topics(client, timeout_s)
    present = [spec for spec in specs if spec.name in topics]
    configs: dict[str, dict[str, str | None]] = {}
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in present]
        remaining = max(deadline - time.monotonic(), 0.1)
        futures = client.describe_configs(resources, request_timeout=remaining)
        for spec, resource in zip(present, resources, strict=True):
            entries = wait(
                futures[resource], remaining, operation="describe configs", topic=spec.name
            )
            configs[spec.name] = {key: entry.value for key, entry in entries.items()}
    described = []
    for spec in specs:
        topic = topics.get(spec.name)
        partitions = topic.partitions if topic is not None else {}
        required = spec.partitions
        if spec.copartitioned_with is not None and spec.copartitioned_with in topics:
            required = max(required, len(topics[spec.copartitioned_with].partitions))
        replicas = {len(p.replicas) for p in partitions.values()}
        found = configs.get(spec.name, {})
        settings = [
            TopicSetting("partitions", str(required), str(len(partitions)) if topic else None),
            TopicSetting(
                "replication.factor",
                str(spec.replication_factor),
                # Partitions that disagree show as the smallest: the weakest one is what counts.
                str(min(replicas)) if replicas else None,
            ),
        ]
        for key in (MIN_INSYNC_REPLICAS, CLEANUP_POLICY, RETENTION_MS):
            settings.append(TopicSetting(key, spec.configs.get(key), found.get(key)))
        described.append(TopicDescription(spec.name, topic is not None, tuple(settings)))
    return described


def _policy_set(policy: str) -> frozenset[str]:
    return frozenset(part.strip() for part in policy.split(",") if part.strip())
