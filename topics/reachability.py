"""A quick check that the Kafka cluster answers, made before a command reads or writes."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from sagas.config import KafkaSettings
from sagas.errors import KafkaUnreachableError
from sagas.kafka_logs import admin_client_config


def unreachable_message(kafka: KafkaSettings) -> str:
    """The one line that says the cluster did not answer, and what to check."""
    return (
        f"cannot reach Kafka at {kafka.bootstrap_servers} within {kafka.connect_timeout:g} s:"
        " is the broker running? (set SAGAS_BOOTSTRAP_SERVERS)"
    )


def check_reachable(kafka: KafkaSettings, admin: AdminClient | None = None) -> None:
    """Return once a broker has answered a metadata request, or raise
    :class:`KafkaUnreachableError` after ``kafka.connect_timeout`` seconds."""
    client = admin or AdminClient(admin_client_config(kafka.client_config()))
    try:
        client.list_topics(timeout=kafka.connect_timeout)
    except KafkaException as exc:
        raise KafkaUnreachableError(unreachable_message(kafka)) from exc
