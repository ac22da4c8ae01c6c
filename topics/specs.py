"""What each topic of a saga should look like, derived from one typed settings model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sagas.errors import ConfigurationError
from topics.naming import TopicNames, check_topic_name
from topics.replication import ClusterReplication, Replication, resolve_replication

CLEANUP_POLICY = "cleanup.policy"
RETENTION_MS = "retention.ms"
MIN_INSYNC_REPLICAS = "min.insync.replicas"


class TopicSettings(BaseModel):
    """How many partitions and replicas a saga's topics get, and how long records stay.

    Three partitions by default (so up to three processes share the work).
    Replication left unset follows the cluster (see
    :func:`topics.replication.resolve_replication`): the brokers'
    ``default.replication.factor``, or up to three replicas on a multi-broker
    cluster whose default is 1, with ``min.insync.replicas`` one less than that.
    Values set here win over the cluster's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    partitions: int = Field(
        default=3,
        ge=1,
        description="Partitions of every topic; the most processes that can share a saga's work.",
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Copies of each partition (None: follow the cluster's default).",
    )
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="Replicas that must have a write before it counts (None: one less than"
        " the replication factor, at least 1).",
    )
    events_retention: timedelta | None = Field(
        default=timedelta(days=30),
        description="How long the event log keeps records (None: forever). History and replay"
        " from the log reach back this far.",
    )
    commands_retention: timedelta = Field(
        default=timedelta(days=7),
        description="How long command topics keep records; commands are normally consumed"
        " within seconds.",
    )
    dlq_retention: timedelta | None = Field(
        default=timedelta(days=90),
        description="How long the DLQ keeps records (None: forever); long enough for an"
        " operator to redrive them.",
    )

    @model_validator(mode="after")
    def _insync_fits_replication(self) -> Self:
        factor, insync = self.replication_factor, self.min_insync_replicas
        if factor is not None and insync is not None and insync > factor:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) cannot exceed"
                f" replication_factor ({self.replication_factor}): no write could succeed"
            )
        return self

    def replication(self, cluster: ClusterReplication | None = None) -> Replication:
        """The replication these settings give on ``cluster``.

        Without a cluster, as on one broker: the factor set here (default 1).
        """
        if cluster is None:
            cluster = ClusterReplication(1, self.replication_factor or 1)
        return resolve_replication(
            cluster, factor=self.replication_factor, min_insync_replicas=self.min_insync_replicas
        )


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as it should exist: partitions, replication and topic-level configs.

    ``copartitioned_with`` names a topic whose partitions this one mirrors
    partition for partition (the changelog mirrors the event log), so it needs
    at least as many partitions as that topic actually has.
    """

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)
    copartitioned_with: str | None = None

    def __post_init__(self) -> None:
        check_topic_name(self.name)
        if self.partitions < 1 or self.replication_factor < 1:
            raise ConfigurationError(
                f"topic {self.name!r} needs at least one partition and one replica,"
                f" got partitions={self.partitions}, replication_factor={self.replication_factor}"
            )

    @property
    def cleanup_policy(self) -> str:
        """``delete``, ``compact`` or both, as the topic's ``cleanup.policy``."""
        return self.configs.get(CLEANUP_POLICY, "delete")


def _retention_ms(retention: timedelta | None) -> str:
    return "-1" if retention is None else str(int(retention.total_seconds() * 1000))


def _spec(
    name: str,
    settings: TopicSettings,
    replication: Replication,
    configs: dict[str, str],
    copartitioned_with: str | None = None,
) -> TopicSpec:
    # Set even for one replica, so a topic states what it was made with whatever the
    # brokers' default is.
    configs[MIN_INSYNC_REPLICAS] = str(replication.min_insync_replicas)
    return TopicSpec(
        name=name,
        partitions=settings.partitions,
        replication_factor=replication.factor,
        configs=configs,
        copartitioned_with=copartitioned_with,
    )


def saga_topic_specs(
    names: TopicNames, settings: TopicSettings, replication: Replication | None = None
) -> list[TopicSpec]:
    """The specs of a saga's own topics: events, state changelog, status, DLQ and the
    query endpoints.

    The event log comes first: the changelog is co-partitioned with it.
    ``replication`` defaults to ``settings.replication()`` (as on one broker).
    """
    chosen = replication or settings.replication()
    return [
        _spec(
            names.events,
            settings,
            chosen,
            {CLEANUP_POLICY: "delete", RETENTION_MS: _retention_ms(settings.events_retention)},
        ),
        _spec(
            names.state_changelog,
            settings,
            chosen,
            {CLEANUP_POLICY: "compact"},
            copartitioned_with=names.events,
        ),
        _spec(names.status, settings, chosen, {CLEANUP_POLICY: "compact"}),
        _spec(
            names.dlq,
            settings,
            chosen,
            {CLEANUP_POLICY: "delete", RETENTION_MS: _retention_ms(settings.dlq_retention)},
        ),
        # One record per processor instance: a single partition keeps it small and ordered.
        replace(
            _spec(names.query_endpoints, settings, chosen, {CLEANUP_POLICY: "compact"}),
            partitions=1,
        ),
    ]


def command_topic_specs(
    names: TopicNames,
    settings: TopicSettings,
    queues: Iterable[str],
    replication: Replication | None = None,
) -> list[TopicSpec]:
    """The specs of the command topics of ``queues`` (each named once, in order)."""
    chosen = replication or settings.replication()
    retention = {CLEANUP_POLICY: "delete", RETENTION_MS: _retention_ms(settings.commands_retention)}
    topics = dict.fromkeys(names.commands(queue) for queue in queues)
    return [_spec(topic, settings, chosen, dict(retention)) for topic in topics]


def all_topic_specs(
    names: TopicNames,
    settings: TopicSettings,
    queues: Iterable[str] | None = None,
    replication: Replication | None = None,
) -> list[TopicSpec]:
    """Everything a saga needs: its own topics and its queues' (default: the saga's own queue).

    Pass the ``replication`` resolved against the cluster (:func:`cluster_replication`
    and :meth:`TopicSettings.replication`); without it, as on one broker.
    """
    used = [names.default_queue] if queues is None else queues
    return saga_topic_specs(names, settings, replication) + command_topic_specs(
        names, settings, used, replication
    )
