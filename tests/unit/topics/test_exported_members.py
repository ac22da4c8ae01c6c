from __future__ import annotations

import topics
from tests.public_surface import public_names


def test_public_surface_is_exactly_the_chosen_names() -> None:
    assert set(topics.__all__) == {
        "MAX_TOPIC_NAME_LENGTH",
        "AdminSource",
        "resolve_replication",
        "describe_topics",
        "cluster_replication",
        "TopicSetting",
        "TopicDescription",
        "Replication",
        "ClusterReplication",
        "GroupActiveError",
        "InvalidNameError",
        "InvalidOffsetError",
        "OffsetChange",
        "PartitionLag",
        "ProvisionReport",
        "ResetTarget",
        "TopicAdminError",
        "TopicMismatch",
        "TopicMismatchError",
        "TopicNames",
        "TopicSettings",
        "TopicSpec",
        "all_topic_specs",
        "check_topic_name",
        "command_topic",
        "command_topic_specs",
        "consumer_lag",
        "ensure_topics",
        "partition_for",
        "reset_offsets",
        "saga_topic_specs",
        "worker_group",
    }
    assert public_names(topics) == set(topics.__all__)
    for name in topics.__all__:
        assert hasattr(topics, name), name
