"""Avro schemas of kafka-sagas' records and the codecs that put them on topics.

``EventCodec``, ``CommandCodec`` and ``StatusCodec`` write plain Avro bodies;
``topic_codec`` wraps one for a topic, in the Confluent wire format when a
:class:`SchemaRegistry` (e.g. :class:`SchemaRegistryClient`) is given.
``README.md`` beside this file describes the wire formats for participants
written in other languages.
"""

from schemas.codecs import AvroCodec, Codec, CommandCodec, EventCodec, StatusCodec
from schemas.loading import LoadedSchema, load_schema
from schemas.registry import (
    SchemaRegistry,
    SchemaRegistryClient,
    SchemaRegistryError,
    UnknownSchemaError,
)
from schemas.wire_format import ConfluentWireCodec, PlainAvroCodec, topic_codec, value_subject

__all__ = [
    "AvroCodec",
    "Codec",
    "CommandCodec",
    "ConfluentWireCodec",
    "EventCodec",
    "LoadedSchema",
    "PlainAvroCodec",
    "SchemaRegistry",
    "SchemaRegistryClient",
    "SchemaRegistryError",
    "StatusCodec",
    "UnknownSchemaError",
    "load_schema",
    "topic_codec",
    "value_subject",
]
