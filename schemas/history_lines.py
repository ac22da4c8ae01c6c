"""A workflow's history as JSON lines: what ``sagas history --output jsonl`` writes and the
test kit's ``replay_history`` reads (one event per line, the fields of
:class:`~sagas.events.Event`, enums as their values)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from sagas.compact_json import compact_json
from sagas.errors import SerializationError
from sagas.events import ErrorInfo, Event, EventType, Origin

_LATER_FIELDS = ("search_attributes",)
"""Fields added to events after histories were first recorded: written only when set, so
a history without them reads and writes back as it was recorded."""


def dump_line(event: Event) -> str:
    """One event as one JSON line, without its newline."""
    fields = asdict(event)
    for name in _LATER_FIELDS:
        if fields[name] is None:
            del fields[name]
    return compact_json(fields)


def dump_history(events: Iterable[Event]) -> str:
    """The events as JSON lines, one event per line."""
    return "".join(dump_line(event) + "\n" for event in events)


def load_history(text: str) -> list[Event]:
    """The events of a ``dump_history`` text; raises ``SerializationError`` on bad lines."""
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields: dict[str, Any] = json.loads(line)
            fields["type"] = EventType(fields["type"])
            fields["origin"] = Origin(fields["origin"])
            if fields.get("error") is not None:
                fields["error"] = ErrorInfo(**fields["error"])
            events.append(Event(**fields))
        except (ValueError, TypeError, KeyError) as exc:
            raise SerializationError(
                f"line {number} of the history is not an event: {exc}"
            ) from exc
    return events
