from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from sagas.errors import ConfigurationError
from topics.naming import InvalidNameError, TopicNames
from topics.replication import ClusterReplication
from topics.specs import (
    TopicSettings,
    TopicSpec,
    all_topic_specs,
    command_topic_specs,
    saga_topic_specs,
)

NAMES = TopicNames("order", prefix="dev.")


def _by_name(specs: list[TopicSpec]) -> dict[str, TopicSpec]:
    return {spec.name: spec for spec in specs}


def test_without_a_cluster_the_defaults_are_one_replica() -> None:
    settings = TopicSettings()
    assert settings.replication_factor is None
    assert settings.min_insync_replicas is None
    assert settings.partitions == 3
    specs = all_topic_specs(NAMES, settings)
    endpoints = [spec for spec in specs if spec.name == NAMES.query_endpoints]
    assert [(s.partitions, s.cleanup_policy) for s in endpoints] == [(1, "compact")]
    assert all(
        spec.replication_factor == 1 and spec.partitions == 3
        for spec in specs
        if spec.name != NAMES.query_endpoints
    )
    assert all(spec.configs["min.insync.replicas"] == "1" for spec in specs)


def test_the_resolved_replication_reaches_every_topic() -> None:
    settings = TopicSettings()
    replication = settings.replication(ClusterReplication(3, live_brokers=3))
    specs = all_topic_specs(NAMES, settings, ["payments", "stock"], replication)
    assert len(specs) == 7
    assert all(spec.replication_factor == 3 for spec in specs)
    assert all(spec.configs["min.insync.replicas"] == "2" for spec in specs)


def test_saga_topics_retention_and_compaction() -> None:
    settings = TopicSettings(events_retention=timedelta(days=10), dlq_retention=None)
    specs = _by_name(saga_topic_specs(NAMES, settings))
    assert list(specs) == [
        "dev.order.events",
        "dev.order.state-changelog",
        "dev.order.status",
        "dev.order.dlq",
        "dev.order.query-endpoints",
    ]
    insync = {"min.insync.replicas": "1"}
    assert specs["dev.order.events"].configs == {
        "cleanup.policy": "delete",
        "retention.ms": str(10 * 24 * 3600 * 1000),
        **insync,
    }
    assert specs["dev.order.state-changelog"].configs == {"cleanup.policy": "compact", **insync}
    assert specs["dev.order.status"].configs == {"cleanup.policy": "compact", **insync}
    assert specs["dev.order.dlq"].configs == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        **insync,
    }


def test_changelog_is_copartitioned_with_the_event_log() -> None:
    specs = _by_name(saga_topic_specs(NAMES, TopicSettings()))
    assert specs["dev.order.state-changelog"].copartitioned_with == "dev.order.events"
    assert specs["dev.order.events"].copartitioned_with is None


def test_explicit_replication_is_used_as_given() -> None:
    settings = TopicSettings(replication_factor=3, min_insync_replicas=2)
    for spec in all_topic_specs(NAMES, settings, ["payments"]):
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"


def test_min_insync_above_replication_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"min_insync_replicas \(3\) cannot exceed"):
        TopicSettings(replication_factor=2, min_insync_replicas=3)


@pytest.mark.parametrize("field", ["partitions", "replication_factor", "min_insync_replicas"])
def test_counts_must_be_positive(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TopicSettings(**{field: 0})


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="partitons"):
        TopicSettings(partitons=3)  # type: ignore[call-arg]


def test_command_topics_one_per_queue_in_order() -> None:
    settings = TopicSettings(commands_retention=timedelta(hours=12))
    specs = command_topic_specs(NAMES, settings, ["payments", "stock", "payments"])
    assert [spec.name for spec in specs] == [
        "dev.queue.payments.commands",
        "dev.queue.stock.commands",
    ]
    assert all(
        spec.configs
        == {
            "cleanup.policy": "delete",
            "retention.ms": str(12 * 3600 * 1000),
            "min.insync.replicas": "1",
        }
        for spec in specs
    )


def test_all_specs_default_to_the_saga_queue() -> None:
    names = [spec.name for spec in all_topic_specs(NAMES, TopicSettings())]
    assert names[-1] == "dev.queue.order.commands"
    assert len(names) == 6
    chosen = [spec.name for spec in all_topic_specs(NAMES, TopicSettings(), ["payments"])]
    assert chosen[-1] == "dev.queue.payments.commands"
    assert "dev.queue.order.commands" not in chosen


def test_spec_validates_its_name_and_counts() -> None:
    with pytest.raises(InvalidNameError, match="has characters Kafka does not allow"):
        TopicSpec("bad name", 1, 1)
    with pytest.raises(ConfigurationError, match="at least one partition"):
        TopicSpec("good", 0, 1)
    assert TopicSpec("good", 1, 1).cleanup_policy == "delete"


def test_settings_are_frozen() -> None:
    settings = TopicSettings()
    with pytest.raises(ValidationError):
        settings.partitions = 12  # type: ignore[misc]
