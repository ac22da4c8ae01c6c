"""A hand-written Avro binary reader of events, for reading a whole event log back.

The twin of :func:`schemas.avro_writer.write_event`: the schema is fixed, so reading the
fields in order, without a generic schema walk, costs a fraction of it. Bytes past the
last field are ignored, as a reader of an older schema ignores fields a newer writer
appended; a record of an older writer, which ends before the fields appended since,
reads them as null. ``tests/unit/schemas`` checks it against fastavro on generated records.
"""

from __future__ import annotations

from sagas.errors import SerializationError
from sagas.events import ErrorInfo, Event, EventType, Origin

_TYPES = {member.value: member for member in EventType}
_ORIGINS = {member.value: member for member in Origin}

# Field kinds in schema order: s string, i int/long, o optional string,
# l optional long, e optional error.
_FIELDS = "sssiSSioioeoloo" + "o"
_FIRST_WRITTEN = 15
"""How many fields every writer so far has written (the rest were appended later)."""


def read_event(data: bytes) -> Event:
    """The event in an Avro body of ``event.avsc``; ``SerializationError`` if it is not one."""
    try:
        return _read(data)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"cannot decode io.kafkasagas.Event: {type(exc).__name__}: {exc}"
        ) from exc


def _read(data: bytes) -> Event:
    pos = 0
    end = len(data)
    values: list[object] = []
    append = values.append
    for kind in _FIELDS:
        if kind == "o" or kind == "l" or kind == "e":
            if pos == end and len(values) >= _FIRST_WRITTEN:
                append(None)
                continue
            branch = data[pos]
            pos += 1
            if branch == 0:
                append(None)
                continue
            if branch != 2:
                raise SerializationError(
                    f"cannot decode io.kafkasagas.Event: union branch {branch}"
                )
            if kind == "e":
                n, pos = _varint(data, pos)
                size = (n >> 1) ^ -(n & 1)
                kind_text = data[pos : pos + size].decode()
                pos += size
                n, pos = _varint(data, pos)
                size = (n >> 1) ^ -(n & 1)
                message = data[pos : pos + size].decode()
                pos += size
                flag = data[pos]
                pos += 1
                append(ErrorInfo(kind_text, message, flag == 1))
                continue
            kind = "s" if kind == "o" else "i"
        # s / S: string, i: zig-zag varint.
        byte = data[pos]
        pos += 1
        n = byte & 0x7F
        shift = 7
        while byte & 0x80:
            byte = data[pos]
            pos += 1
            n |= (byte & 0x7F) << shift
            shift += 7
        value = (n >> 1) ^ -(n & 1)
        if kind == "i":
            append(value)
            continue
        if value < 0 or pos + value > end:
            raise SerializationError("cannot decode io.kafkasagas.Event: truncated string")
        append(data[pos : pos + value].decode())
        pos += value
    (event_id, workflow_id, saga, version, type_text, origin_text, time_ms, step, attempt,
     payload, error, name, due_ms, parent, cause, search_attributes) = values  # fmt: skip
    event_type = _TYPES.get(str(type_text))
    if event_type is None:
        raise SerializationError(
            f"cannot decode io.kafkasagas.Event: unknown event type {type_text!r}"
            " (written by a newer version?)",
            workflow_id=workflow_id if isinstance(workflow_id, str) else None,
        )
    origin = _ORIGINS.get(str(origin_text))
    if origin is None:
        raise SerializationError(
            f"cannot decode io.kafkasagas.Event: unknown origin {origin_text!r}"
            " (written by a newer version?)",
            workflow_id=workflow_id if isinstance(workflow_id, str) else None,
        )
    return Event(
        event_id, workflow_id, saga, version, event_type, origin, time_ms,  # type: ignore[arg-type]
        step, attempt, payload, error, name, due_ms, parent, cause,  # type: ignore[arg-type]
        search_attributes,  # type: ignore[arg-type]
    )  # fmt: skip


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    pos += 1
    n = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
    return n, pos
