"""The Avro schemas shipped in this package, read once and parsed once with fastavro."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from fastavro import parse_schema

from sagas.errors import SerializationError

SchemaName = Literal["event", "command", "status"]


@dataclass(frozen=True, slots=True)
class LoadedSchema:
    """One ``.avsc`` file: its text (what a registry stores) and its fastavro parsed form."""

    name: SchemaName
    text: str
    parsed: dict[str, Any]

    @property
    def full_name(self) -> str:
        """The record's Avro full name, e.g. ``io.kafkasagas.Event``."""
        return str(self.parsed["name"])


@cache
def load_schema(name: SchemaName) -> LoadedSchema:
    """The schema ``schemas/<name>.avsc``, parsed on first use and shared afterwards."""
    text = resources.files(__package__).joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    return LoadedSchema(name=name, text=text, parsed=parse_record_schema(text))


def parse_record_schema(text: str) -> dict[str, Any]:
    """The fastavro parsed form of a record schema given as JSON text."""
    # A fresh named-types table per schema: event and status both define
    # io.kafkasagas.ErrorInfo, and each schema must stand alone for a registry.
    parsed = parse_schema(json.loads(text), named_schemas={})
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SerializationError(f"not an Avro record schema: {text[:200]!r}")
    return parsed
