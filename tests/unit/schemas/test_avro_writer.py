"""The hand-written writers produce exactly fastavro's bytes for the same records."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import given

from sagas.errors import SerializationError
from sagas.events import Command, Event, EventType, Origin, StatusRecord
from schemas import CommandCodec, EventCodec, StatusCodec
from schemas.codecs import AvroCodec
from tests.unit.schemas.strategies import commands, events, statuses


def fastavro_bytes(codec: AvroCodec[Any], obj: object) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, codec.schema.parsed, codec.to_dict(obj))
    return buffer.getvalue()


@given(events)
def test_event_bytes_match_fastavro(event: Event) -> None:
    codec = EventCodec()
    assert codec.write(event) == fastavro_bytes(codec, event)


@given(commands)
def test_command_bytes_match_fastavro(command: Command) -> None:
    codec = CommandCodec()
    assert codec.write(command) == fastavro_bytes(codec, command)


@given(statuses)
def test_status_bytes_match_fastavro(status: StatusRecord) -> None:
    codec = StatusCodec()
    assert codec.write(status) == fastavro_bytes(codec, status)


def test_an_int_field_out_of_range_is_refused() -> None:
    event = Event("e", "w", "s", 2**31, EventType.STARTED, Origin.PROCESSOR, 0)
    with pytest.raises(SerializationError, match="does not fit an Avro int"):
        EventCodec().encode(event)
