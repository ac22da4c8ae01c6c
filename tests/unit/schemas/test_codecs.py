from __future__ import annotations

import dataclasses
import json
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given

from sagas.errors import SerializationError
from sagas.events import (
    Command,
    CommandKind,
    ErrorInfo,
    Event,
    EventType,
    Origin,
    StatusRecord,
    WorkflowStatus,
)
from schemas.codecs import AvroCodec, CommandCodec, EventCodec, StatusCodec
from schemas.loading import load_schema
from tests.unit.schemas.strategies import commands, events, statuses

EVENT_CODEC = EventCodec()
COMMAND_CODEC = CommandCodec()
STATUS_CODEC = StatusCodec()

FAILED = Event(
    event_id="e-1",
    workflow_id="order-42",
    saga="order",
    version=3,
    type=EventType.STEP_FAILED,
    origin=Origin.WORKER,
    time_ms=1_763_750_000_000,
    step="charge_card",
    attempt=2,
    error=ErrorInfo("CardDeclined", "insufficient funds", non_retryable=True),
)


@given(events)
def test_events_round_trip(event: Event) -> None:
    assert EVENT_CODEC.decode(EVENT_CODEC.encode(event)) == event


@given(commands)
def test_commands_round_trip(command: Command) -> None:
    assert COMMAND_CODEC.decode(COMMAND_CODEC.encode(command)) == command


@given(statuses)
def test_status_records_round_trip(status: StatusRecord) -> None:
    assert STATUS_CODEC.decode(STATUS_CODEC.encode(status)) == status


def test_decoded_enums_are_the_enum_members() -> None:
    decoded = EVENT_CODEC.decode(EVENT_CODEC.encode(FAILED))
    assert decoded.type is EventType.STEP_FAILED
    assert decoded.origin is Origin.WORKER


def test_body_is_plain_avro_readable_with_the_schema_alone() -> None:
    fields = schemaless_reader(BytesIO(EVENT_CODEC.encode(FAILED)), load_schema("event").parsed)
    assert isinstance(fields, dict)
    assert fields["type"] == "step_failed"
    assert fields["error"] == {
        "type": "CardDeclined",
        "message": "insufficient funds",
        "non_retryable": True,
    }


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x02", b"\xff\xff\xff\xff", b"not avro at all, just text", bytes(range(256))],
)
@pytest.mark.parametrize(
    ("codec", "record"),
    [
        (EVENT_CODEC, "io.kafkasagas.Event"),
        (COMMAND_CODEC, "io.kafkasagas.Command"),
        (STATUS_CODEC, "io.kafkasagas.StatusRecord"),
    ],
)
def test_garbage_raises_serialization_error_naming_the_record(
    codec: AvroCodec[Any], record: str, garbage: bytes
) -> None:
    with pytest.raises(SerializationError, match=f"cannot decode {record}"):
        codec.decode(garbage)


def test_truncated_record_is_an_error() -> None:
    body = EVENT_CODEC.encode(FAILED)
    with pytest.raises(SerializationError):
        EVENT_CODEC.decode(body[:-3])


def _with_field(name: str, **values: Any) -> dict[str, Any]:
    fields = EVENT_CODEC.to_dict(FAILED)
    fields.update(values)
    return fields


def _write(schema: dict[str, Any], fields: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, parse_schema(schema, named_schemas={}), fields)
    return buffer.getvalue()


def test_unknown_event_type_from_a_newer_writer_is_a_clear_error() -> None:
    body = _write(json.loads(load_schema("event").text), _with_field("type", type="step_paused"))
    with pytest.raises(SerializationError, match="unknown event type 'step_paused'") as caught:
        EVENT_CODEC.decode(body)
    assert caught.value.workflow_id == "order-42"


def test_unknown_command_kind_and_status_are_clear_errors() -> None:
    command = Command("c-1", "w", "order", 1, "pay", 1, CommandKind.ACTION, "k", "order.events", 5)
    fields = COMMAND_CODEC.to_dict(command) | {"kind": "audit"}
    with pytest.raises(SerializationError, match="unknown command kind 'audit'"):
        COMMAND_CODEC.decode(_write(json.loads(load_schema("command").text), fields))
    status = StatusRecord("w", "order", 1, WorkflowStatus.RUNNING, 1, 2)
    fields = STATUS_CODEC.to_dict(status) | {"status": "PAUSED"}
    with pytest.raises(SerializationError, match="unknown workflow status 'PAUSED'"):
        STATUS_CODEC.decode(_write(json.loads(load_schema("status").text), fields))


def test_a_field_appended_by_a_newer_writer_is_ignored() -> None:
    newer = json.loads(load_schema("event").text)
    newer["fields"].append(
        {"name": "tenant", "type": ["null", "string"], "default": None, "doc": "later"}
    )
    body = _write(newer, _with_field("tenant", tenant="acme"))
    assert EVENT_CODEC.decode(body) == FAILED


def _before_search_attributes() -> dict[str, Any]:
    older = json.loads(load_schema("event").text)
    older["fields"] = [f for f in older["fields"] if f["name"] != "search_attributes"]
    return older


def test_an_event_of_a_writer_before_search_attributes_decodes_with_none() -> None:
    older = _before_search_attributes()
    fields = EVENT_CODEC.to_dict(FAILED)
    del fields["search_attributes"]
    body = _write(older, fields)
    assert EVENT_CODEC.decode(body) == FAILED
    resolved = EVENT_CODEC.read(BytesIO(body), parse_schema(older, named_schemas={}))
    assert resolved == FAILED


def test_a_reader_before_search_attributes_reads_an_answer_carrying_them() -> None:
    answer = dataclasses.replace(
        FAILED, type=EventType.STEP_SUCCEEDED, error=None, search_attributes='{"total":120}'
    )
    body = EVENT_CODEC.encode(answer)
    assert EVENT_CODEC.decode(body) == answer
    older = parse_schema(_before_search_attributes(), named_schemas={})
    fields = schemaless_reader(BytesIO(body), older, None)
    assert isinstance(fields, dict)
    assert "search_attributes" not in fields
    assert fields["step"] == "charge_card"


def test_empty_id_is_refused_when_encoding() -> None:
    with pytest.raises(SerializationError, match="event_id is empty"):
        EVENT_CODEC.encode(dataclasses.replace(FAILED, event_id=""))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"payload": "\ud800"}, "UnicodeEncodeError"),
        ({"time_ms": 2**70}, "OverflowError"),
        ({"step": 7}, "on field step"),
    ],
)
def test_unencodable_values_raise_serialization_error(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(SerializationError, match=r"cannot encode io\.kafkasagas\.Event") as caught:
        EVENT_CODEC.encode(dataclasses.replace(FAILED, **change))
    assert problem in str(caught.value)
    assert caught.value.workflow_id == "order-42"
    assert caught.value.__cause__ is not None
