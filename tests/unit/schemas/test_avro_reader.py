"""The direct event reader reads what fastavro reads, and refuses what is not an event."""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO

import pytest
from fastavro import schemaless_writer
from hypothesis import given

from sagas.errors import SerializationError
from sagas.events import Event
from schemas import EventCodec
from schemas.avro_reader import read_event
from tests.unit.schemas.strategies import events

CODEC = EventCodec()


@given(events)
def test_it_reads_what_fastavro_wrote(event: Event) -> None:
    buffer = BytesIO()
    schemaless_writer(buffer, CODEC.schema.parsed, CODEC.to_dict(event))
    assert read_event(buffer.getvalue()) == event == CODEC.decode(buffer.getvalue())


@given(events)
def test_bytes_past_the_last_field_are_ignored(event: Event) -> None:
    assert read_event(CODEC.encode(event) + b"\x02\x04ab") == event


@given(events)
def test_a_truncated_body_is_a_serialization_error(event: Event) -> None:
    data = CODEC.encode(event)
    # Cut within the fields every writer wrote: a body that ends after them is an older
    # writer's, whose later fields read as null.
    written_by_all = len(CODEC.encode(replace(event, search_attributes=None))) - 1
    with pytest.raises(SerializationError, match=r"cannot decode io\.kafkasagas\.Event"):
        read_event(data[: written_by_all // 2])


@given(events)
def test_a_body_of_a_writer_before_search_attributes_reads_them_as_null(event: Event) -> None:
    older = replace(event, search_attributes=None)
    data = CODEC.encode(older)[:-1]  # without the last field's null branch
    assert read_event(data) == older


@given(events)
def test_an_unknown_event_type_is_a_serialization_error(event: Event) -> None:
    buffer = BytesIO()
    schemaless_writer(buffer, CODEC.schema.parsed, {**CODEC.to_dict(event), "type": "nope"})
    with pytest.raises(SerializationError, match="unknown event type 'nope'"):
        read_event(buffer.getvalue())
