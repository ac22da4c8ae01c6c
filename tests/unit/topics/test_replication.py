"""The rule that picks a topic's replication when a user has not."""

from __future__ import annotations

import pytest

from sagas.errors import ConfigurationError
from topics.replication import ClusterReplication, Replication, resolve_replication
from topics.specs import TopicSettings


@pytest.mark.parametrize(
    ("default", "brokers", "expected"),
    [
        (1, 1, Replication(1, 1)),  # one laptop broker
        (3, 3, Replication(3, 2)),  # the brokers' default is followed
        (2, 5, Replication(2, 1)),
        (1, 3, Replication(3, 2)),  # a default left at 1 on a cluster: up to three copies
        (1, 2, Replication(2, 1)),
        (1, 6, Replication(3, 2)),  # never more than three unless asked
        (4, 6, Replication(4, 3)),  # a default above three is the operator's choice
    ],
)
def test_unset_replication_follows_the_cluster(
    default: int, brokers: int, expected: Replication
) -> None:
    assert resolve_replication(ClusterReplication(default, brokers)) == expected


def test_a_broker_down_does_not_lower_the_brokers_default() -> None:
    # Existing topics were made with 3 and must still describe as matching.
    assert resolve_replication(ClusterReplication(3, live_brokers=2)) == Replication(3, 2)


def test_explicit_values_win_over_the_cluster() -> None:
    cluster = ClusterReplication(3, live_brokers=3)
    assert resolve_replication(cluster, factor=2) == Replication(2, 1)
    assert resolve_replication(cluster, min_insync_replicas=3) == Replication(3, 3)
    assert resolve_replication(cluster, factor=1, min_insync_replicas=1) == Replication(1, 1)


def test_min_insync_above_the_resolved_factor_is_a_clear_error() -> None:
    # Neither value alone is wrong; together no write could ever succeed.
    with pytest.raises(ConfigurationError, match=r"min\.insync\.replicas 3 must be between 1 and"):
        resolve_replication(ClusterReplication(1, live_brokers=1), min_insync_replicas=3)


def test_settings_resolve_through_the_same_rule() -> None:
    assert TopicSettings().replication(ClusterReplication(1, 3)) == Replication(3, 2)
    explicit = TopicSettings(replication_factor=2, min_insync_replicas=2)
    assert explicit.replication(ClusterReplication(3, 3)) == Replication(2, 2)
    with pytest.raises(ConfigurationError, match="must be between 1 and the replication"):
        TopicSettings(min_insync_replicas=2).replication()
