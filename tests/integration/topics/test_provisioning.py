from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from topics.admin import TopicAdminError
from topics.naming import TopicNames
from topics.provisioning import TopicMismatchError, ensure_topics
from topics.specs import TopicSettings, TopicSpec, all_topic_specs

pytestmark = pytest.mark.kafka


def _configs(admin: AdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in entries.items()}


def _partitions(admin: AdminClient, topic: str) -> int:
    return len(admin.list_topics(topic, timeout=30).topics[topic].partitions)


def _create(admin: AdminClient, topic: str, partitions: int, **config: str) -> None:
    admin.create_topics([NewTopic(topic, partitions, 1, config=config)])[topic].result(timeout=30)


def test_creates_every_topic_of_a_saga_then_is_idempotent(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    names = TopicNames(unique_name("order"))
    specs = all_topic_specs(names, TopicSettings(partitions=2), ["payments-" + names.saga])
    first = ensure_topics(kafka_config, specs)
    assert set(first.created) == {spec.name for spec in specs}
    assert first.existing == ()
    admin = AdminClient(kafka_config)
    for spec in specs:
        assert _partitions(admin, spec.name) == spec.partitions
        # Every topic of the saga takes the setting; the query endpoints' announcements
        # are one small compacted topic whatever the setting.
        expected = 1 if spec.name.endswith(".query-endpoints") else 2
        assert spec.partitions == expected, spec.name
        actual = _configs(admin, spec.name)
        for key, value in spec.configs.items():
            assert actual[key] == value, (spec.name, key)
    second = ensure_topics(admin, specs)
    assert second.created == ()
    assert set(second.existing) == {spec.name for spec in specs}


def test_fewer_partitions_and_other_cleanup_policy_are_reported_not_changed(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    names = TopicNames(unique_name("order"))
    admin = AdminClient(kafka_config)
    _create(admin, names.events, 1)
    _create(admin, names.status, 3, **{"cleanup.policy": "delete"})
    specs = all_topic_specs(names, TopicSettings(partitions=3))
    with pytest.raises(TopicMismatchError) as caught:
        ensure_topics(admin, specs)
    found = {(m.topic, m.setting): (m.expected, m.actual) for m in caught.value.mismatches}
    assert found == {
        (names.events, "partitions"): ("at least 3", "1"),
        (names.status, "cleanup.policy"): ("compact", "delete"),
    }
    assert f"{names.events}: partitions is 1, expected at least 3" in str(caught.value)
    assert _partitions(admin, names.events) == 1
    assert _configs(admin, names.status)["cleanup.policy"] == "delete"
    # What was missing was still created, so the operator has one thing left to fix.
    assert _partitions(admin, names.dlq) == 3
    assert _configs(admin, names.state_changelog)["cleanup.policy"] == "compact"


def test_changelog_takes_the_partitions_the_event_log_really_has(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    names = TopicNames(unique_name("order"))
    admin = AdminClient(kafka_config)
    _create(admin, names.events, 4)
    report = ensure_topics(admin, all_topic_specs(names, TopicSettings(partitions=2)))
    assert report.existing == (names.events,)
    assert _partitions(admin, names.state_changelog) == 4
    assert _partitions(admin, names.status) == 2


def test_changelog_with_fewer_partitions_than_the_event_log_is_reported(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    names = TopicNames(unique_name("order"))
    admin = AdminClient(kafka_config)
    _create(admin, names.events, 4)
    _create(admin, names.state_changelog, 2, **{"cleanup.policy": "compact"})
    with pytest.raises(TopicMismatchError) as caught:
        ensure_topics(admin, all_topic_specs(names, TopicSettings(partitions=2)))
    assert [(m.topic, m.expected, m.actual) for m in caught.value.mismatches] == [
        (names.state_changelog, "at least 4", "2")
    ]


def test_replication_beyond_the_cluster_is_a_clear_admin_error(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    spec = TopicSpec(unique_name("t"), partitions=1, replication_factor=3)
    with pytest.raises(TopicAdminError, match="create topic") as caught:
        ensure_topics(kafka_config, [spec])
    assert caught.value.code == "INVALID_REPLICATION_FACTOR"
    assert caught.value.topic == spec.name


def test_unreachable_cluster_is_a_topic_admin_error() -> None:
    config = {"bootstrap.servers": "127.0.0.1:1", "logger": _silent_logger()}
    with pytest.raises(TopicAdminError, match="cannot list topics") as caught:
        ensure_topics(config, [TopicSpec("t", 1, 1)], timeout_s=1)
    assert caught.value.retriable


def _silent_logger() -> logging.Logger:
    # librdkafka logs every refused connection; this test refuses them on purpose.
    logger = logging.getLogger("tests.topics.unreachable")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger
