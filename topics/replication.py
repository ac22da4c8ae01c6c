"""How many replicas a saga's topics get: what was configured, else what the cluster implies."""

from __future__ import annotations

from dataclasses import dataclass

from sagas.errors import ConfigurationError

MAX_DEFAULT_REPLICATION = 3
"""The most replicas chosen without being asked: three survive one broker lost and one down."""


@dataclass(frozen=True, slots=True)
class ClusterReplication:
    """What the cluster says about replication: its brokers' default and how many are up."""

    default_replication_factor: int
    """The brokers' ``default.replication.factor``."""
    live_brokers: int
    """Brokers in the cluster's metadata right now."""


@dataclass(frozen=True, slots=True)
class Replication:
    """The replication every topic of a saga is created with."""

    factor: int
    min_insync_replicas: int


def resolve_replication(
    cluster: ClusterReplication,
    *,
    factor: int | None = None,
    min_insync_replicas: int | None = None,
) -> Replication:
    """The replication to create topics with: explicit values win, the cluster fills the rest.

    Without an explicit factor: the brokers' ``default.replication.factor``, or
    ``min(3, live brokers)`` when that default is 1 on a multi-broker cluster (a default
    left at 1 is almost always an oversight there, and it left partitions leaderless
    while one broker was down). Without an explicit ``min.insync.replicas``:
    factor - 1, at least 1, so a write survives one replica lost and one broker may be
    down without stopping writes. Raises :class:`ConfigurationError` for combinations
    no write could satisfy. A factor above the live brokers is left to Kafka, which
    refuses to create such a topic: topics that exist must stay usable while a broker
    is down.
    """
    if factor is None:
        factor = cluster.default_replication_factor
        if factor <= 1 and cluster.live_brokers > 1:
            factor = min(MAX_DEFAULT_REPLICATION, cluster.live_brokers)
    if factor < 1:
        raise ConfigurationError(
            f"replication factor must be at least 1, got {factor}", non_retryable=True
        )
    if min_insync_replicas is None:
        min_insync_replicas = max(1, factor - 1)
    if not 1 <= min_insync_replicas <= factor:
        raise ConfigurationError(
            f"min.insync.replicas {min_insync_replicas} must be between 1 and the replication"
            f" factor {factor}: no write could succeed",
            non_retryable=True,
        )
    return Replication(factor=factor, min_insync_replicas=min_insync_replicas)
