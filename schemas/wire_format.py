"""Record values in the Confluent wire format, and the choice between it and plain Avro.

With a schema registry, a value is the magic byte 0, the schema id as 4 bytes
big-endian, then the Avro body; the schema is registered under the subject
``<topic>-value``. Without one, a value is the Avro body alone.
"""

from __future__ import annotations

import json
import threading
from io import BytesIO
from typing import Any, Generic, TypeVar

from sagas.compact_json import compact_json
from sagas.errors import SerializationError
from schemas.codecs import AvroCodec, Codec
from schemas.loading import parse_record_schema
from schemas.registry import SchemaRegistry

T = TypeVar("T")

MAGIC_BYTE = 0
HEADER_SIZE = 5


def value_subject(topic: str) -> str:
    """The registry subject of a topic's record values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


class ConfluentWireCodec(Generic[T]):
    """Frames an :class:`AvroCodec`'s bodies with the registry's schema id, and reads them back.

    Our own schema is registered on the first encode (or by :meth:`register`).
    A value written with another schema id is read with that writer schema,
    fetched once from the registry, resolved against ours.
    """

    def __init__(self, codec: AvroCodec[T], registry: SchemaRegistry, subject: str) -> None:
        self.codec = codec
        self.registry = registry
        self.subject = subject
        self.record_name = codec.record_name
        # The registry stores compact JSON: the same text from every process gets one id.
        self._schema_text = compact_json(json.loads(codec.schema.text))
        self._header: bytes | None = None
        self._schema_id: int | None = None
        self._writer_schemas: dict[int, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def register(self) -> int:
        """The registry's id of our schema under :attr:`subject`, registering it if needed."""
        if self._schema_id is None:
            schema_id = self.registry.register(self.subject, self._schema_text)
            self._header = bytes((MAGIC_BYTE,)) + schema_id.to_bytes(4, "big")
            self._schema_id = schema_id
        return self._schema_id

    def encode(self, obj: T) -> bytes:
        """The wire-format value of ``obj``: magic byte, schema id, Avro body."""
        header = self._header
        if header is None:
            self.register()
            header = self._header
            assert header is not None
        return header + self.codec.encode(obj)

    def decode(self, data: bytes) -> T:
        """The object in a wire-format value, whichever registered schema wrote it."""
        if len(data) < HEADER_SIZE:
            raise SerializationError(
                f"cannot decode {self.record_name}: {len(data)} bytes is too short"
                " for the Confluent wire format (magic byte and schema id)"
            )
        if data[0] != MAGIC_BYTE:
            raise SerializationError(
                f"cannot decode {self.record_name}: magic byte is {data[0]}, not {MAGIC_BYTE};"
                " was it written without a schema registry?"
            )
        schema_id = int.from_bytes(data[1:HEADER_SIZE], "big")
        stream = BytesIO(data)
        stream.seek(HEADER_SIZE)
        if schema_id == self._schema_id:
            return self.codec.read(stream, None)
        return self.codec.read(stream, self._writer_schema(schema_id))

    def _writer_schema(self, schema_id: int) -> dict[str, Any] | None:
        """The parsed writer schema of ``schema_id``, or None when it is ours."""
        with self._lock:
            if schema_id in self._writer_schemas:
                return self._writer_schemas[schema_id]
        text = self.registry.schema_text(schema_id)
        try:
            same = json.loads(text) == json.loads(self._schema_text)
            parsed = None if same else parse_record_schema(text)
        except Exception as exc:
            # fastavro rejects a bad schema with assorted errors (SchemaParseError, KeyError, ...).
            raise SerializationError(
                f"cannot decode {self.record_name}: schema id {schema_id} is not a usable"
                f" Avro schema: {exc}"
            ) from exc
        with self._lock:
            self._writer_schemas[schema_id] = parsed
        return parsed


class PlainAvroCodec(Generic[T]):
    """An :class:`AvroCodec` for topics without a registry that explains a framed value it meets."""

    def __init__(self, codec: AvroCodec[T]) -> None:
        self.codec = codec
        self.record_name = codec.record_name

    def encode(self, obj: T) -> bytes:
        """The plain Avro body of ``obj``."""
        return self.codec.encode(obj)

    def decode(self, data: bytes) -> T:
        """The object in a plain Avro body."""
        # Every record starts with a non-empty id string (the encoder insists),
        # whose length byte is never 0; a leading 0 is the registry's magic byte.
        if data[:1] == b"\x00":
            raise SerializationError(
                f"cannot decode {self.record_name}: the value starts with the Confluent magic"
                " byte; it was written with a schema registry, so configure one to read it"
            )
        return self.codec.decode(data)


def topic_codec(codec: AvroCodec[T], topic: str, registry: SchemaRegistry | None) -> Codec[T]:
    """The codec of ``topic``'s values: wire format with a registry, plain Avro without."""
    if registry is None:
        return PlainAvroCodec(codec)
    return ConfluentWireCodec(codec, registry, value_subject(topic))
