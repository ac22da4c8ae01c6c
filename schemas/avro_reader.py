"""A hand-written Avro binary reader of events, for reading a whole event log back.

The twin of :func:`schemas.avro_writer.write_event`: the schema is fixed, so reading the
fields in order, without a generic schema walk, costs a fraction of it. Bytes past the
last field are ignored, as a reader of an older schema ignores fields a newer writer
appended; a record of an older writer, which ends before the fields appended since,
reads them as null. ``tests/unit/schemas`` checks it against fastavro on generated records.
"""

from __future__ import annotations

from typing import Any

from sagas.errors import SerializationError
from sagas.events import ErrorInfo, Event, EventType, Origin

_TYPES = {member.value.encode(): member for member in EventType}
_ORIGINS = {member.value.encode(): member for member in Origin}

# Event is a frozen dataclass, whose __init__ sets each of its 16 fields through
# object.__setattr__; setting the slots directly builds the same object in half the time,
# which is a tenth of reading an event. Event has no __post_init__ to skip.
_NEW = object.__new__
(_S_EVENT_ID, _S_WORKFLOW_ID, _S_SAGA, _S_VERSION, _S_TYPE, _S_ORIGIN, _S_TIME_MS, _S_STEP,
 _S_ATTEMPT, _S_PAYLOAD, _S_ERROR, _S_NAME, _S_DUE_MS, _S_PARENT, _S_CAUSE,
 _S_SEARCH) = (vars(Event)[name].__set__ for name in Event.__slots__)  # fmt: skip


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


def _truncated() -> SerializationError:
    return SerializationError("cannot decode io.kafkasagas.Event: truncated string")


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """The zig-zag varint at ``pos`` and the position after it."""
    byte = data[pos]
    pos += 1
    n = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _raw(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """The length-prefixed bytes at ``pos`` and the position after them."""
    n = data[pos]
    if n < 0x80:  # a length under 64: its varint is one byte
        size = (n >> 1) ^ -(n & 1)
        pos += 1
    else:
        size, pos = _long(data, pos)
    stop = pos + size
    if size < 0 or stop > end:
        raise _truncated()
    return data[pos:stop], stop


def _text(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, pos = _raw(data, pos, end)
    return raw.decode(), pos


def _optional_text(data: bytes, pos: int, end: int) -> tuple[str | None, int]:
    branch = data[pos]
    if branch == 0:
        return None, pos + 1
    if branch != 2:
        raise SerializationError(f"cannot decode io.kafkasagas.Event: union branch {branch}")
    return _text(data, pos + 1, end)


def _read(data: bytes) -> Event:
    # One straight pass over the fields in schema order: a loop over field kinds cost
    # more in dispatch than the reading itself. Most optional fields are null, so their
    # null branch is tested here before calling a reader; the strings and small ints
    # under 64 (one-byte lengths and varints: ids, names, versions, attempts) are read
    # inline, which halves the calls per event; anything longer goes through _raw/_long.
    end = len(data)
    n = data[0]
    if n < 0x80 and not n & 1:
        stop = 1 + (n >> 1)
        if stop > end:
            raise _truncated()
        event_id = data[1:stop].decode()
        pos = stop
    else:
        event_id, pos = _text(data, 0, end)
    n = data[pos]
    if n < 0x80 and not n & 1:
        stop = pos + 1 + (n >> 1)
        if stop > end:
            raise _truncated()
        workflow_id = data[pos + 1 : stop].decode()
        pos = stop
    else:
        workflow_id, pos = _text(data, pos, end)
    n = data[pos]
    if n < 0x80 and not n & 1:
        stop = pos + 1 + (n >> 1)
        if stop > end:
            raise _truncated()
        saga = data[pos + 1 : stop].decode()
        pos = stop
    else:
        saga, pos = _text(data, pos, end)
    n = data[pos]
    if n < 0x80:
        version = (n >> 1) ^ -(n & 1)
        pos += 1
    else:
        version, pos = _long(data, pos)
    n = data[pos]
    if n < 0x80 and not n & 1:
        stop = pos + 1 + (n >> 1)
        if stop > end:
            raise _truncated()
        type_raw = data[pos + 1 : stop]
        pos = stop
    else:
        type_raw, pos = _raw(data, pos, end)
    n = data[pos]
    if n < 0x80 and not n & 1:
        stop = pos + 1 + (n >> 1)
        if stop > end:
            raise _truncated()
        origin_raw = data[pos + 1 : stop]
        pos = stop
    else:
        origin_raw, pos = _raw(data, pos, end)
    time_ms, pos = _long(data, pos)
    step: str | None = None
    if data[pos]:
        n = data[pos + 1]
        if data[pos] == 2 and n < 0x80 and not n & 1:
            stop = pos + 2 + (n >> 1)
            if stop > end:
                raise _truncated()
            step = data[pos + 2 : stop].decode()
            pos = stop
        else:
            step, pos = _optional_text(data, pos, end)
    else:
        pos += 1
    n = data[pos]
    if n < 0x80:
        attempt = (n >> 1) ^ -(n & 1)
        pos += 1
    else:
        attempt, pos = _long(data, pos)
    payload: str | None = None
    if data[pos]:
        payload, pos = _optional_text(data, pos, end)
    else:
        pos += 1
    error: ErrorInfo | None = None
    branch = data[pos]
    pos += 1
    if branch == 2:
        error_type, pos = _text(data, pos, end)
        message, pos = _text(data, pos, end)
        error = ErrorInfo(error_type, message, data[pos] == 1)
        pos += 1
    elif branch != 0:
        raise SerializationError(f"cannot decode io.kafkasagas.Event: union branch {branch}")
    name: str | None = None
    if data[pos]:
        name, pos = _optional_text(data, pos, end)
    else:
        pos += 1
    due_ms: int | None = None
    branch = data[pos]
    pos += 1
    if branch == 2:
        due_ms, pos = _long(data, pos)
    elif branch != 0:
        raise SerializationError(f"cannot decode io.kafkasagas.Event: union branch {branch}")
    parent: str | None = None
    if data[pos]:
        parent, pos = _optional_text(data, pos, end)
    else:
        pos += 1
    cause: str | None = None
    if data[pos]:
        cause, pos = _optional_text(data, pos, end)
    else:
        pos += 1
    search_attributes: str | None = None
    if pos < end:  # an older writer's body ends before search_attributes
        search_attributes, pos = _optional_text(data, pos, end)
    event_type = _TYPES.get(type_raw)
    if event_type is None:
        raise SerializationError(
            f"cannot decode io.kafkasagas.Event: unknown event type {_shown(type_raw)!r}"
            " (written by a newer version?)",
            workflow_id=workflow_id,
        )
    origin = _ORIGINS.get(origin_raw)
    if origin is None:
        raise SerializationError(
            f"cannot decode io.kafkasagas.Event: unknown origin {_shown(origin_raw)!r}"
            " (written by a newer version?)",
            workflow_id=workflow_id,
        )
    event: Any = _NEW(Event)
    _S_EVENT_ID(event, event_id)
    _S_WORKFLOW_ID(event, workflow_id)
    _S_SAGA(event, saga)
    _S_VERSION(event, version)
    _S_TYPE(event, event_type)
    _S_ORIGIN(event, origin)
    _S_TIME_MS(event, time_ms)
    _S_STEP(event, step)
    _S_ATTEMPT(event, attempt)
    _S_PAYLOAD(event, payload)
    _S_ERROR(event, error)
    _S_NAME(event, name)
    _S_DUE_MS(event, due_ms)
    _S_PARENT(event, parent)
    _S_CAUSE(event, cause)
    _S_SEARCH(event, search_attributes)
    return event  # type: ignore[no-any-return]


def _shown(raw: bytes) -> str:
    return raw.decode(errors="replace")
