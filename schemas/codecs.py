"""Avro codecs for events, commands and status records: plain Avro bodies, no framing.

These run for every record a processor reads or writes, so each builds the
record dict in one step and calls fastavro's schemaless writer and reader with
a schema parsed once at import of the first codec.
"""

from __future__ import annotations

from io import BytesIO
from typing import IO, Any, Generic, Protocol, TypeVar

from fastavro import schemaless_reader, schemaless_writer

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
from schemas.avro_reader import read_event
from schemas.avro_writer import write_command, write_event, write_status
from schemas.loading import LoadedSchema, SchemaName, load_schema

T = TypeVar("T")

_ENCODE_ERRORS = (ValueError, TypeError, AttributeError, OverflowError, UnicodeError)

# Looking a value up in a dict is several times faster than calling the enum.
_EVENT_TYPES = {member.value: member for member in EventType}
_ORIGINS = {member.value: member for member in Origin}
_COMMAND_KINDS = {member.value: member for member in CommandKind}
_STATUSES = {member.value: member for member in WorkflowStatus}


class Codec(Protocol[T]):
    """Turns one record type into the bytes of a Kafka record value and back."""

    @property
    def record_name(self) -> str:
        """The record's Avro full name, used in error messages."""
        ...

    def encode(self, obj: T) -> bytes:
        """The record value for ``obj``."""
        ...

    def decode(self, data: bytes) -> T:
        """The object in a record value; raises ``SerializationError`` if it holds none."""
        ...


class AvroCodec(Generic[T]):
    """Encodes one record type as a plain Avro body with the schema shipped in ``schemas/``."""

    schema_name: SchemaName
    # The first field, an id that is never empty: a plain body therefore never
    # starts with byte 0, which is how a framed (registry) value is told apart.
    id_field: str

    def __init__(self) -> None:
        self.schema: LoadedSchema = load_schema(self.schema_name)
        self._parsed = self.schema.parsed
        self.record_name: str = self.schema.full_name

    def encode(self, obj: T) -> bytes:
        """The Avro body of ``obj``."""
        try:
            if not getattr(obj, self.id_field):
                raise SerializationError(
                    f"cannot encode {self.record_name}: {self.id_field} is empty",
                    workflow_id=getattr(obj, "workflow_id", None),
                )
            return self.write(obj)
        except _ENCODE_ERRORS as fast_error:
            # The direct writers do not say which field failed; fastavro's generic writer
            # does, so the bad record is written once more by it, for the message only.
            try:
                AvroCodec.write(self, obj)
            except _ENCODE_ERRORS as exc:
                raise SerializationError(
                    f"cannot encode {self.record_name}: {exc!r}",
                    workflow_id=getattr(obj, "workflow_id", None),
                ) from exc
            raise SerializationError(
                f"cannot encode {self.record_name}: {fast_error!r}",
                workflow_id=getattr(obj, "workflow_id", None),
            ) from fast_error

    def write(self, obj: T) -> bytes:
        """The Avro body of ``obj``, by fastavro's generic writer."""
        buffer = BytesIO()
        schemaless_writer(buffer, self._parsed, self.to_dict(obj))
        return buffer.getvalue()

    def decode(self, data: bytes) -> T:
        """The object in an Avro body written by :meth:`encode`."""
        return self.read(BytesIO(data), None)

    def read(self, stream: IO[bytes], writer_schema: dict[str, Any] | None) -> T:
        """The object at the stream's position, written with ``writer_schema`` (default: ours).

        Bytes after the record are ignored, so that a reader of this schema can
        read records from a newer writer that appended optional fields.
        """
        try:
            if writer_schema is None:
                fields = schemaless_reader(stream, self._parsed, None)
            else:
                fields = schemaless_reader(stream, writer_schema, self._parsed)
        # fastavro reports malformed input with whatever builtin error the bad
        # byte triggers (EOFError, IndexError, UnicodeDecodeError, ...).
        except Exception as exc:
            raise SerializationError(
                f"cannot decode {self.record_name}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(fields, dict):
            raise SerializationError(f"cannot decode {self.record_name}: not a record")
        return self.from_dict(fields)

    def to_dict(self, obj: T) -> dict[str, Any]:
        """The Avro record dict of ``obj``."""
        raise NotImplementedError

    def from_dict(self, fields: dict[str, Any]) -> T:
        """The object of a decoded Avro record dict."""
        raise NotImplementedError

    def _unknown(self, what: str, value: object, fields: dict[str, Any]) -> SerializationError:
        workflow_id = fields.get("workflow_id")
        return SerializationError(
            f"cannot decode {self.record_name}: unknown {what} {value!r}"
            " (written by a newer version?)",
            workflow_id=workflow_id if isinstance(workflow_id, str) else None,
        )


def _error_to_dict(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "non_retryable": error.non_retryable}


def _error_from_dict(fields: dict[str, Any] | None) -> ErrorInfo | None:
    if fields is None:
        return None
    return ErrorInfo(fields["type"], fields["message"], fields["non_retryable"])


class EventCodec(AvroCodec[Event]):
    """Codec of :class:`sagas.events.Event`, the records of ``<saga>.events``."""

    schema_name = "event"
    id_field = "event_id"

    def write(self, obj: Event) -> bytes:
        """The Avro body of an event, written directly (the hot path)."""
        return write_event(obj)

    def decode(self, data: bytes) -> Event:
        """The event in a plain Avro body, read directly: also one of an older writer,
        which ends before the fields appended since (they read as null)."""
        return read_event(data)

    def to_dict(self, obj: Event) -> dict[str, Any]:
        """The Avro record dict of an event."""
        return {
            "event_id": obj.event_id,
            "workflow_id": obj.workflow_id,
            "saga": obj.saga,
            "version": obj.version,
            "type": obj.type,
            "origin": obj.origin,
            "time_ms": obj.time_ms,
            "step": obj.step,
            "attempt": obj.attempt,
            "payload": obj.payload,
            "error": None if obj.error is None else _error_to_dict(obj.error),
            "name": obj.name,
            "due_ms": obj.due_ms,
            "parent": obj.parent,
            "cause": obj.cause,
            "search_attributes": obj.search_attributes,
        }

    def from_dict(self, fields: dict[str, Any]) -> Event:
        """The event of a decoded Avro record dict."""
        event_type = _EVENT_TYPES.get(fields["type"])
        if event_type is None:
            raise self._unknown("event type", fields["type"], fields)
        origin = _ORIGINS.get(fields["origin"])
        if origin is None:
            raise self._unknown("origin", fields["origin"], fields)
        error = fields["error"]
        return Event(
            fields["event_id"],
            fields["workflow_id"],
            fields["saga"],
            fields["version"],
            event_type,
            origin,
            fields["time_ms"],
            fields["step"],
            fields["attempt"],
            fields["payload"],
            None if error is None else _error_from_dict(error),
            fields["name"],
            fields["due_ms"],
            fields["parent"],
            fields["cause"],
            fields.get("search_attributes"),
        )


class CommandCodec(AvroCodec[Command]):
    """Codec of :class:`sagas.events.Command`, the records of a queue's command topic."""

    schema_name = "command"
    id_field = "command_id"

    def write(self, obj: Command) -> bytes:
        """The Avro body of a command, written directly (the hot path)."""
        return write_command(obj)

    def to_dict(self, obj: Command) -> dict[str, Any]:
        """The Avro record dict of a command."""
        return {
            "command_id": obj.command_id,
            "workflow_id": obj.workflow_id,
            "saga": obj.saga,
            "version": obj.version,
            "step": obj.step,
            "attempt": obj.attempt,
            "kind": obj.kind,
            "idempotency_key": obj.idempotency_key,
            "reply_topic": obj.reply_topic,
            "time_ms": obj.time_ms,
            "deadline_ms": obj.deadline_ms,
            "input": obj.input,
            "results": obj.results,
            "signals": obj.signals,
            "heartbeat_details": obj.heartbeat_details,
            "heartbeat_timeout_ms": obj.heartbeat_timeout_ms,
            "start_deadline_ms": obj.start_deadline_ms,
        }

    def from_dict(self, fields: dict[str, Any]) -> Command:
        """The command of a decoded Avro record dict."""
        kind = _COMMAND_KINDS.get(fields["kind"])
        if kind is None:
            raise self._unknown("command kind", fields["kind"], fields)
        return Command(
            fields["command_id"],
            fields["workflow_id"],
            fields["saga"],
            fields["version"],
            fields["step"],
            fields["attempt"],
            kind,
            fields["idempotency_key"],
            fields["reply_topic"],
            fields["time_ms"],
            fields["deadline_ms"],
            fields["input"],
            fields["results"],
            fields["signals"],
            fields.get("heartbeat_details"),
            fields.get("heartbeat_timeout_ms"),
            fields.get("start_deadline_ms"),
        )


class StatusCodec(AvroCodec[StatusRecord]):
    """Codec of :class:`sagas.events.StatusRecord`, the records of ``<saga>.status``."""

    schema_name = "status"
    id_field = "workflow_id"

    def write(self, obj: StatusRecord) -> bytes:
        """The Avro body of a status record, written directly (the hot path)."""
        return write_status(obj)

    def to_dict(self, obj: StatusRecord) -> dict[str, Any]:
        """The Avro record dict of a status record."""
        return {
            "workflow_id": obj.workflow_id,
            "saga": obj.saga,
            "version": obj.version,
            "status": obj.status,
            "started_ms": obj.started_ms,
            "updated_ms": obj.updated_ms,
            "current_steps": obj.current_steps,
            "result": obj.result,
            "error": _error_to_dict(obj.error),
            "failed_step": obj.failed_step,
            "parked": obj.parked,
            "failed_compensation": obj.failed_compensation,
            "last_rejection": obj.last_rejection,
            "run_id": obj.run_id,
            "previous_run_id": obj.previous_run_id,
        }

    def from_dict(self, fields: dict[str, Any]) -> StatusRecord:
        """The status record of a decoded Avro record dict."""
        status = _STATUSES.get(fields["status"])
        if status is None:
            raise self._unknown("workflow status", fields["status"], fields)
        return StatusRecord(
            fields["workflow_id"],
            fields["saga"],
            fields["version"],
            status,
            fields["started_ms"],
            fields["updated_ms"],
            tuple(fields["current_steps"]),
            fields["result"],
            _error_from_dict(fields["error"]),
            fields["failed_step"],
            fields["parked"],
            fields.get("failed_compensation"),
            fields.get("last_rejection"),
            fields.get("run_id"),
            fields.get("previous_run_id"),
        )
