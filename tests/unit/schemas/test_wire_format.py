from __future__ import annotations

import dataclasses
import json
import socket
from io import BytesIO

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings

from sagas.errors import SerializationError
from sagas.events import ErrorInfo, Event, EventType, Origin
from schemas.codecs import EventCodec
from schemas.loading import load_schema
from schemas.registry import SchemaRegistryClient, SchemaRegistryError, UnknownSchemaError
from schemas.wire_format import (
    ConfluentWireCodec,
    PlainAvroCodec,
    topic_codec,
    value_subject,
)
from tests.unit.schemas.conftest import FakeRegistry
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


def _wire_codec(registry: FakeRegistry) -> ConfluentWireCodec[Event]:
    codec = topic_codec(EventCodec(), "shop.order.events", SchemaRegistryClient(registry.url))
    assert isinstance(codec, ConfluentWireCodec)
    return codec


def test_value_subject_follows_the_topic_name_strategy() -> None:
    assert value_subject("shop.order.events") == "shop.order.events-value"


def test_wire_format_is_magic_byte_schema_id_and_the_avro_body(
    fake_registry: FakeRegistry,
) -> None:
    codec = _wire_codec(fake_registry)
    value = codec.encode(EVENT)
    schema_id = fake_registry.subjects["shop.order.events-value"][0]
    assert value[0] == 0
    assert int.from_bytes(value[1:5], "big") == schema_id
    assert value[5:] == EventCodec().encode(EVENT)
    assert codec.decode(value) == EVENT


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(event=events)
def test_wire_format_round_trips_events(fake_registry: FakeRegistry, event: Event) -> None:
    codec = _wire_codec(fake_registry)
    assert codec.decode(codec.encode(event)) == event


def test_schema_is_registered_once_and_decoding_our_id_needs_no_request(
    fake_registry: FakeRegistry,
) -> None:
    codec = _wire_codec(fake_registry)
    values = [codec.encode(dataclasses.replace(EVENT, event_id=f"e-{i}")) for i in range(5)]
    assert [codec.decode(v).event_id for v in values] == [f"e-{i}" for i in range(5)]
    assert [(method, path) for method, path, _ in fake_registry.requests] == [
        ("POST", "/subjects/shop.order.events-value/versions")
    ]
    registered = json.loads(fake_registry.schemas[codec.register()])
    assert registered == json.loads(load_schema("event").text)


def test_a_second_process_reads_values_by_schema_id_from_the_registry(
    fake_registry: FakeRegistry,
) -> None:
    value = _wire_codec(fake_registry).encode(EVENT)
    reader = _wire_codec(fake_registry)
    assert reader.decode(value) == EVENT
    assert reader.decode(value) == EVENT
    fetches = [path for method, path, _ in fake_registry.requests if method == "GET"]
    assert fetches == [f"/schemas/ids/{int.from_bytes(value[1:5], 'big')}"]


def test_a_value_from_an_evolved_writer_schema_is_resolved_against_ours(
    fake_registry: FakeRegistry,
) -> None:
    newer = json.loads(load_schema("event").text)
    # A field added in the middle only decodes through schema resolution.
    newer["fields"].insert(
        3, {"name": "tenant", "type": ["null", "string"], "default": None, "doc": "later"}
    )
    newer_text = json.dumps(newer)
    schema_id = fake_registry.register("shop.order.events-value", newer_text)
    fields = EventCodec().to_dict(EVENT) | {"tenant": "acme"}
    body = BytesIO()
    schemaless_writer(body, parse_schema(newer, named_schemas={}), fields)
    value = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
    assert _wire_codec(fake_registry).decode(value) == EVENT


def test_unknown_schema_id_is_a_serialization_error(fake_registry: FakeRegistry) -> None:
    value = b"\x00" + (4242).to_bytes(4, "big") + EventCodec().encode(EVENT)
    with pytest.raises(UnknownSchemaError, match="schema id 4242 is unknown") as caught:
        _wire_codec(fake_registry).decode(value)
    assert isinstance(caught.value, SerializationError)
    assert caught.value.schema_id == 4242


def test_wrong_magic_byte_is_refused(fake_registry: FakeRegistry) -> None:
    value = _wire_codec(fake_registry).encode(EVENT)
    with pytest.raises(SerializationError, match="magic byte is 1, not 0"):
        _wire_codec(fake_registry).decode(b"\x01" + value[1:])


def test_plain_body_is_refused_by_the_wire_codec(fake_registry: FakeRegistry) -> None:
    with pytest.raises(SerializationError, match="written without a schema registry"):
        _wire_codec(fake_registry).decode(EventCodec().encode(EVENT))


@pytest.mark.parametrize("value", [b"", b"\x00", b"\x00\x00\x00\x01"])
def test_value_shorter_than_the_header_is_refused(
    fake_registry: FakeRegistry, value: bytes
) -> None:
    with pytest.raises(SerializationError, match="too short for the Confluent wire format"):
        _wire_codec(fake_registry).decode(value)


def test_garbage_after_a_valid_header_is_a_serialization_error(
    fake_registry: FakeRegistry,
) -> None:
    codec = _wire_codec(fake_registry)
    header = codec.encode(EVENT)[:5]
    with pytest.raises(SerializationError, match=r"cannot decode io\.kafkasagas\.Event"):
        codec.decode(header + b"\xff\xfe garbage")


def test_a_schema_id_that_is_not_an_avro_record_is_a_serialization_error(
    fake_registry: FakeRegistry,
) -> None:
    schema_id = fake_registry.register("other-value", '"string"')
    value = b"\x00" + schema_id.to_bytes(4, "big") + b"\x02a"
    with pytest.raises(SerializationError, match=f"schema id {schema_id} is not a usable"):
        _wire_codec(fake_registry).decode(value)


def test_without_a_registry_values_are_plain_avro() -> None:
    codec = topic_codec(EventCodec(), "shop.order.events", None)
    assert isinstance(codec, PlainAvroCodec)
    value = codec.encode(EVENT)
    assert value == EventCodec().encode(EVENT)
    assert codec.decode(value) == EVENT


def test_plain_codec_explains_a_value_written_with_a_registry(
    fake_registry: FakeRegistry,
) -> None:
    value = _wire_codec(fake_registry).encode(EVENT)
    plain = topic_codec(EventCodec(), "shop.order.events", None)
    with pytest.raises(SerializationError, match="written with a schema registry"):
        plain.decode(value)


def test_registry_down_is_not_a_serialization_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SchemaRegistryClient(f"http://127.0.0.1:{port}", timeout_s=2)
    codec = topic_codec(EventCodec(), "shop.order.events", client)
    with pytest.raises(SchemaRegistryError, match="did not answer") as caught:
        codec.encode(EVENT)
    assert not isinstance(caught.value, SerializationError)
    value = b"\x00" + (3).to_bytes(4, "big") + EventCodec().encode(EVENT)
    with pytest.raises(SchemaRegistryError):
        codec.decode(value)


def test_error_info_survives_the_wire(fake_registry: FakeRegistry) -> None:
    failed = dataclasses.replace(
        EVENT, type=EventType.STEP_FAILED, error=ErrorInfo("Timeout", "no answer", False)
    )
    codec = _wire_codec(fake_registry)
    assert codec.decode(codec.encode(failed)).error == ErrorInfo("Timeout", "no answer", False)
