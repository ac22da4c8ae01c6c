"""The codecs of a deployment's topics: plain Avro, or the Confluent wire format when a
schema registry is configured (``SAGAS_SCHEMA_REGISTRY_URL``)."""

from __future__ import annotations

import functools

from sagas.config import KafkaSettings
from sagas.events import Command, Event, StatusRecord
from schemas.codecs import Codec, CommandCodec, EventCodec, StatusCodec
from schemas.registry import SchemaRegistryClient
from schemas.wire_format import topic_codec


@functools.cache
def _registry(url: str) -> SchemaRegistryClient:
    # One client per registry for the whole process: it caches schema ids and schemas.
    return SchemaRegistryClient(url)


def registry_for(kafka: KafkaSettings) -> SchemaRegistryClient | None:
    """The shared registry client of these settings, or ``None`` for plain Avro."""
    return _registry(kafka.schema_registry_url) if kafka.schema_registry_url else None


def event_codec(kafka: KafkaSettings, topic: str) -> Codec[Event]:
    """The codec of an event topic's values."""
    return topic_codec(EventCodec(), topic, registry_for(kafka))


def command_codec(kafka: KafkaSettings, topic: str) -> Codec[Command]:
    """The codec of a command topic's values."""
    return topic_codec(CommandCodec(), topic, registry_for(kafka))


def status_codec(kafka: KafkaSettings, topic: str) -> Codec[StatusRecord]:
    """The codec of a status topic's values."""
    return topic_codec(StatusCodec(), topic, registry_for(kafka))
