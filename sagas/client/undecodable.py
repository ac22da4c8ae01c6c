"""The error a client reader raises for a record it cannot decode, naming where and why."""

from __future__ import annotations

from sagas.errors import SerializationError
from schemas.wire_format import MAGIC_BYTE, PlainAvroCodec


def undecodable(
    codec: object, topic: str, partition: int, offset: int, value: bytes, cause: Exception
) -> SerializationError:
    """A :class:`SerializationError` for the record at ``topic[partition]@offset``, read
    with ``codec``."""
    where = f"record at {topic}[{partition}]@{offset}"
    if isinstance(codec, PlainAvroCodec) and value[:1] == bytes([MAGIC_BYTE]):
        return SerializationError(
            f"{where} is in the schema-registry wire format but no SAGAS_SCHEMA_REGISTRY_URL is set"
        )
    return SerializationError(f"{where} cannot be decoded: {cause}")
