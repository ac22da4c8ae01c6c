"""A saga's topics: their names, their specs, creating them, reading lag, resetting offsets.

``TopicNames`` names everything; ``TopicSettings`` and ``all_topic_specs``
say what each topic should look like (replication resolved against the cluster
by ``cluster_replication`` and ``resolve_replication``); ``ensure_topics``
creates what is missing and ``describe_topics`` compares what exists;
``consumer_lag`` and ``reset_offsets`` serve dashboards and ``sagas replay``.
``ensure_topics`` takes an ``AdminClient`` or a confluent-kafka config dict;
``consumer_lag`` and ``reset_offsets`` take the config dict, since they read
committed offsets with a consumer.
"""

from topics.admin import AdminSource, TopicAdminError, cluster_replication
from topics.description import TopicDescription, TopicSetting, describe_topics
from topics.lag import PartitionLag, consumer_lag
from topics.naming import (
    MAX_TOPIC_NAME_LENGTH,
    InvalidNameError,
    TopicNames,
    check_topic_name,
    command_topic,
    worker_group,
)
from topics.offset_reset import (
    GroupActiveError,
    InvalidOffsetError,
    OffsetChange,
    ResetTarget,
    reset_offsets,
)
from topics.partitioning import partition_for
from topics.provisioning import ProvisionReport, TopicMismatch, TopicMismatchError, ensure_topics
from topics.replication import ClusterReplication, Replication, resolve_replication
from topics.specs import (
    TopicSettings,
    TopicSpec,
    all_topic_specs,
    command_topic_specs,
    saga_topic_specs,
)

__all__ = [
    "MAX_TOPIC_NAME_LENGTH",
    "AdminSource",
    "ClusterReplication",
    "GroupActiveError",
    "InvalidNameError",
    "InvalidOffsetError",
    "OffsetChange",
    "PartitionLag",
    "ProvisionReport",
    "Replication",
    "ResetTarget",
    "TopicAdminError",
    "TopicDescription",
    "TopicMismatch",
    "TopicMismatchError",
    "TopicNames",
    "TopicSetting",
    "TopicSettings",
    "TopicSpec",
    "all_topic_specs",
    "check_topic_name",
    "cluster_replication",
    "command_topic",
    "command_topic_specs",
    "consumer_lag",
    "describe_topics",
    "ensure_topics",
    "partition_for",
    "reset_offsets",
    "resolve_replication",
    "saga_topic_specs",
    "worker_group",
]
