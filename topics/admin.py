"""The admin client the topic functions use, and the error that wraps Kafka's admin failures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

# confluent-kafka documents these under confluent_kafka.admin but leaves them
# out of its __all__, which strict mypy reads as "not exported".
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from sagas.errors import SagaError
from sagas.kafka_logs import admin_client_config
from topics.replication import ClusterReplication

T = TypeVar("T")

# A fresh cluster answers group requests with these until its offsets topic is loaded,
# and so does any cluster while a group's coordinator moves to another broker.
_COORDINATOR_CODES = frozenset(
    {"NOT_COORDINATOR", "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS"}
)
_RETRY_INTERVAL_S = 0.2

AdminSource = AdminClient | Mapping[str, Any]
"""An admin client, or the confluent-kafka config dict to build one from."""


class TopicAdminError(SagaError):
    """A Kafka admin request failed; ``code`` is Kafka's error name, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        topic: str | None = None,
        group: str | None = None,
        code: str | None = None,
        retriable: bool = False,
    ) -> None:
        super().__init__(message, non_retryable=not retriable)
        self.operation = operation
        self.topic = topic
        self.group = group
        self.code = code
        self.retriable = retriable


def admin_client(source: AdminSource) -> AdminClient:
    """``source`` itself if it is an admin client, else a new one built from the config dict."""
    if isinstance(source, AdminClient):
        return source
    try:
        return AdminClient(admin_client_config(source))
    except KafkaException as exc:
        raise TopicAdminError(
            f"cannot create a Kafka admin client: {exc}", operation="connect"
        ) from exc


def kafka_error_of(exc: BaseException) -> KafkaError | None:
    """The ``KafkaError`` a confluent-kafka exception carries, if any."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def wait(
    future: Future[T],
    timeout_s: float,
    *,
    operation: str,
    topic: str | None = None,
    group: str | None = None,
) -> T:
    """The result of an admin future, with Kafka's failures turned into ``TopicAdminError``."""
    try:
        return future.result(timeout=timeout_s)
    except KafkaException as exc:
        error = kafka_error_of(exc)
        where = " ".join(
            part
            for part in (f"topic {topic}" if topic else "", f"group {group}" if group else "")
            if part
        )
        raise TopicAdminError(
            f"Kafka refused to {operation}{' for ' + where if where else ''}:"
            f" {error.str() if error is not None else exc}",
            operation=operation,
            topic=topic,
            group=group,
            code=error.name() if error is not None else None,
            retriable=bool(error is not None and error.retriable()),
        ) from exc
    except TimeoutError as exc:
        raise TopicAdminError(
            f"Kafka did not answer {operation} within {timeout_s:g} s",
            operation=operation,
            topic=topic,
            group=group,
            retriable=True,
        ) from exc


def cluster_topics(client: AdminClient, timeout_s: float) -> dict[str, Any]:
    """Topic name to confluent-kafka ``TopicMetadata``, for every topic in the cluster."""
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = kafka_error_of(exc)
        raise TopicAdminError(
            f"cannot list topics: {error.str() if error is not None else exc}",
            operation="list topics",
            code=error.name() if error is not None else None,
            retriable=True,
        ) from exc
    return dict(metadata.topics)


def cluster_replication(client: AdminClient, timeout_s: float) -> ClusterReplication:
    """The brokers' ``default.replication.factor`` and how many brokers are live.

    Read from the cluster's metadata and every live broker's configs; when brokers
    disagree the lowest default is taken, so no topic gets more replicas than any
    broker would give it.
    """
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = kafka_error_of(exc)
        raise TopicAdminError(
            f"cannot read the cluster's brokers: {error.str() if error is not None else exc}",
            operation="list brokers",
            code=error.name() if error is not None else None,
            retriable=True,
        ) from exc
    broker_ids = sorted(metadata.brokers)
    resources = [ConfigResource(ResourceType.BROKER, str(broker)) for broker in broker_ids]
    # librdkafka takes one broker resource per request: ask them all, then wait.
    futures = [
        client.describe_configs([resource], request_timeout=timeout_s)[resource]
        for resource in resources
    ]
    defaults = []
    for future in futures:
        entries = wait(future, timeout_s, operation="describe broker configs")
        entry = entries.get("default.replication.factor")
        if entry is not None and entry.value is not None:
            defaults.append(int(entry.value))
    return ClusterReplication(
        default_replication_factor=min(defaults, default=1), live_brokers=len(broker_ids)
    )


def until_coordinator_answers(call: Callable[[], T], deadline: float) -> T:
    """``call()``, again while the group's coordinator is moving or loading, until ``deadline``."""
    while True:
        try:
            return call()
        except TopicAdminError as exc:
            if exc.code not in _COORDINATOR_CODES or time.monotonic() >= deadline:
                raise
        time.sleep(_RETRY_INTERVAL_S)


def topic_max_message_bytes(
    source: AdminSource, topics: Iterable[str], timeout_s: float = 30.0
) -> dict[str, int]:
    """Each existing topic's ``max.message.bytes`` (its own setting or the broker's default).

    A topic that does not exist (yet) is left out, so the caller falls back to a default.
    """
    names = sorted(set(topics))
    if not names:
        return {}
    client = admin_client(source)
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    futures = client.describe_configs(resources, request_timeout=timeout_s)
    limits: dict[str, int] = {}
    for resource, future in futures.items():
        try:
            entries = wait(future, timeout_s, operation="describe configs", topic=resource.name)
        except TopicAdminError as exc:
            if exc.code == "UNKNOWN_TOPIC_OR_PART":
                continue
            raise
        entry = entries.get("max.message.bytes")
        if entry is not None and entry.value is not None:
            limits[resource.name] = int(entry.value)
    return limits
