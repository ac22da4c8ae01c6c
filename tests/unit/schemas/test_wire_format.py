"""Wire-format framing that needs no schema registry, and a registry that does not answer.

Values read and written through a real registry are tested in
tests/integration/schemas/test_wire_format.py.
"""

from __future__ import annotations

import socket

import pytest

from sagas.errors import SerializationError
from sagas.events import Event, EventType, Origin
from schemas.codecs import EventCodec
from schemas.registry import SchemaRegistryClient, SchemaRegistryError
from schemas.wire_format import ConfluentWireCodec, PlainAvroCodec, topic_codec, value_subject
from tests.unit.schemas.conftest import FakeRegistry

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


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _offline_codec() -> ConfluentWireCodec[Event]:
    """A wire codec whose registry is never reached: the values it is given fail first."""
    client = SchemaRegistryClient(f"http://127.0.0.1:{_closed_port()}", timeout_s=2)
    codec = topic_codec(EventCodec(), "shop.order.events", client)
    assert isinstance(codec, ConfluentWireCodec)
    return codec


def test_value_subject_follows_the_topic_name_strategy() -> None:
    assert value_subject("shop.order.events") == "shop.order.events-value"


def test_plain_body_is_refused_by_the_wire_codec() -> None:
    with pytest.raises(SerializationError, match="written without a schema registry"):
        _offline_codec().decode(EventCodec().encode(EVENT))


@pytest.mark.parametrize("value", [b"", b"\x00", b"\x00\x00\x00\x01"])
def test_value_shorter_than_the_header_is_refused(value: bytes) -> None:
    with pytest.raises(SerializationError, match="too short for the Confluent wire format"):
        _offline_codec().decode(value)


def test_without_a_registry_values_are_plain_avro() -> None:
    codec = topic_codec(EventCodec(), "shop.order.events", None)
    assert isinstance(codec, PlainAvroCodec)
    value = codec.encode(EVENT)
    assert value == EventCodec().encode(EVENT)
    assert codec.decode(value) == EVENT


def test_registry_down_is_not_a_serialization_error() -> None:
    codec = _offline_codec()
    with pytest.raises(SchemaRegistryError, match="did not answer") as caught:
        codec.encode(EVENT)
    assert not isinstance(caught.value, SerializationError)
    value = b"\x00" + (3).to_bytes(4, "big") + EventCodec().encode(EVENT)
    with pytest.raises(SchemaRegistryError):
        codec.decode(value)


def test_a_registry_failing_with_5xx_is_not_a_serialization_error(
    fake_registry: FakeRegistry,
) -> None:
    fake_registry.fail_with = 503
    codec = topic_codec(EventCodec(), "shop.order.events", SchemaRegistryClient(fake_registry.url))
    with pytest.raises(SchemaRegistryError, match="503") as caught:
        codec.encode(EVENT)
    assert caught.value.status == 503
    assert not isinstance(caught.value, SerializationError)
    value = b"\x00" + (3).to_bytes(4, "big") + EventCodec().encode(EVENT)
    with pytest.raises(SchemaRegistryError) as fetching:
        codec.decode(value)
    assert not isinstance(fetching.value, SerializationError)
