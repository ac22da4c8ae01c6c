"""Values in the Confluent wire format, with a real Apicurio Registry holding the schemas."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from io import BytesIO

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings

from sagas.errors import SerializationError
from sagas.events import ErrorInfo, Event, EventType, Origin
from schemas.codecs import EventCodec
from schemas.loading import load_schema
from schemas.registry import SchemaRegistryClient, UnknownSchemaError
from schemas.wire_format import ConfluentWireCodec, topic_codec
from tests.unit.schemas.strategies import events

EVENT = Event(
    event_id="e-7",
    workflow_id="order-7",
    saga="order",
    version=1,
    type=EventType.STEP_SUCCEEDED,
    origin=Origin.WORKER,
    time_ms=1_763_750_000_000,
    step="reserve_stock",
    attempt=1,
    payload='{"reservation": "r-1"}',
)

WireCodec = Callable[[], ConfluentWireCodec[Event]]


@pytest.fixture
def wire_codec(schema_registry: str, unique_name: Callable[[str], str]) -> WireCodec:
    """A new codec (as in a new process, with empty caches) for one topic of this test."""
    topic = unique_name("events")

    def make() -> ConfluentWireCodec[Event]:
        codec = topic_codec(EventCodec(), topic, SchemaRegistryClient(schema_registry))
        assert isinstance(codec, ConfluentWireCodec)
        return codec

    return make


def test_wire_format_is_magic_byte_schema_id_and_the_avro_body(
    wire_codec: WireCodec, schema_registry: str
) -> None:
    codec = wire_codec()
    value = codec.encode(EVENT)
    schema_id = int.from_bytes(value[1:5], "big")
    assert value[0] == 0
    assert schema_id == codec.register()
    assert value[5:] == EventCodec().encode(EVENT)
    assert codec.decode(value) == EVENT
    registered = SchemaRegistryClient(schema_registry).schema_text(schema_id)
    assert json.loads(registered) == json.loads(load_schema("event").text)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25, deadline=None
)
@given(event=events)
def test_wire_format_round_trips_events(wire_codec: WireCodec, event: Event) -> None:
    codec = wire_codec()
    assert codec.decode(codec.encode(event)) == event


def test_a_second_process_reads_values_by_schema_id_from_the_registry(
    wire_codec: WireCodec,
) -> None:
    values = [wire_codec().encode(dataclasses.replace(EVENT, event_id=f"e-{i}")) for i in range(3)]
    reader = wire_codec()
    assert [reader.decode(v).event_id for v in values] == ["e-0", "e-1", "e-2"]


def test_a_value_from_an_evolved_writer_schema_is_resolved_against_ours(
    wire_codec: WireCodec, schema_registry: str
) -> None:
    codec = wire_codec()
    codec.register()
    newer = json.loads(load_schema("event").text)
    # A field added in the middle only decodes through schema resolution.
    newer["fields"].insert(
        3, {"name": "tenant", "type": ["null", "string"], "default": None, "doc": "later"}
    )
    schema_id = SchemaRegistryClient(schema_registry).register(codec.subject, json.dumps(newer))
    fields = EventCodec().to_dict(EVENT) | {"tenant": "acme"}
    body = BytesIO()
    schemaless_writer(body, parse_schema(newer, named_schemas={}), fields)
    value = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
    assert wire_codec().decode(value) == EVENT


def test_unknown_schema_id_is_a_serialization_error(wire_codec: WireCodec) -> None:
    unknown = 2_000_000_000
    value = b"\x00" + unknown.to_bytes(4, "big") + EventCodec().encode(EVENT)
    with pytest.raises(UnknownSchemaError, match=f"schema id {unknown} is unknown") as caught:
        wire_codec().decode(value)
    assert isinstance(caught.value, SerializationError)
    assert caught.value.schema_id == unknown


def test_wrong_magic_byte_is_refused(wire_codec: WireCodec) -> None:
    value = wire_codec().encode(EVENT)
    with pytest.raises(SerializationError, match="magic byte is 1, not 0"):
        wire_codec().decode(b"\x01" + value[1:])


def test_garbage_after_a_valid_header_is_a_serialization_error(wire_codec: WireCodec) -> None:
    codec = wire_codec()
    header = codec.encode(EVENT)[:5]
    with pytest.raises(SerializationError, match=r"cannot decode io\.kafkasagas\.Event"):
        codec.decode(header + b"\xff\xfe garbage")


def test_a_schema_id_that_is_not_an_avro_record_is_a_serialization_error(
    wire_codec: WireCodec, schema_registry: str, unique_name: Callable[[str], str]
) -> None:
    schema_id = SchemaRegistryClient(schema_registry).register(unique_name("value"), '"string"')
    value = b"\x00" + schema_id.to_bytes(4, "big") + b"\x02a"
    with pytest.raises(SerializationError, match=f"schema id {schema_id} is not a usable"):
        wire_codec().decode(value)


def test_plain_codec_explains_a_value_written_with_a_registry(wire_codec: WireCodec) -> None:
    value = wire_codec().encode(EVENT)
    plain = topic_codec(EventCodec(), "shop.order.events", None)
    with pytest.raises(SerializationError, match="written with a schema registry"):
        plain.decode(value)


def test_error_info_survives_the_wire(wire_codec: WireCodec) -> None:
    failed = dataclasses.replace(
        EVENT, type=EventType.STEP_FAILED, error=ErrorInfo("Timeout", "no answer", False)
    )
    codec = wire_codec()
    assert codec.decode(codec.encode(failed)).error == ErrorInfo("Timeout", "no answer", False)
