from __future__ import annotations

import dataclasses
import json
import re
from enum import StrEnum
from importlib import resources
from typing import Any

import pytest

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
from schemas.loading import SchemaName, load_schema

SCHEMAS: list[tuple[SchemaName, type[Any]]] = [
    ("event", Event),
    ("command", Command),
    ("status", StatusRecord),
]


def _raw(name: SchemaName) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(load_schema(name).text)
    return loaded


def _records(schema: Any) -> list[dict[str, Any]]:
    """Every record definition inside a schema, nested ones included."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            found.append(schema)
            for field in schema["fields"]:
                found.extend(_records(field["type"]))
        elif schema.get("type") == "array":
            found.extend(_records(schema["items"]))
    elif isinstance(schema, list):
        for branch in schema:
            found.extend(_records(branch))
    return found


@pytest.mark.parametrize(("name", "model"), SCHEMAS)
def test_schema_fields_match_the_dataclass_in_order(name: SchemaName, model: type[Any]) -> None:
    schema = _raw(name)
    assert [f["name"] for f in schema["fields"]] == [f.name for f in dataclasses.fields(model)]
    assert schema["name"] == model.__name__
    assert load_schema(name).full_name == f"io.kafkasagas.{model.__name__}"


@pytest.mark.parametrize(("name", "model"), SCHEMAS)
def test_every_record_and_field_is_documented(name: SchemaName, model: type[Any]) -> None:
    records = _records(_raw(name))
    assert records
    for record in records:
        assert record["doc"].strip(), record["name"]
        for field in record["fields"]:
            assert field["doc"].strip(), f"{record['name']}.{field['name']}"


@pytest.mark.parametrize(("name", "model"), SCHEMAS)
def test_optional_fields_default_so_readers_can_resolve_older_writers(
    name: SchemaName, model: type[Any]
) -> None:
    schema = _raw(name)
    for field, attribute in zip(schema["fields"], dataclasses.fields(model), strict=True):
        has_python_default = attribute.default is not dataclasses.MISSING
        assert ("default" in field) == has_python_default, field["name"]


def test_error_info_is_defined_identically_wherever_it_appears() -> None:
    definitions = [
        record
        for name in ("event", "status")
        for record in _records(_raw(name))
        if record["name"] == "ErrorInfo"
    ]
    assert len(definitions) == 2
    assert definitions[0] == definitions[1]
    assert [f["name"] for f in definitions[0]["fields"]] == [
        f.name for f in dataclasses.fields(ErrorInfo)
    ]


def test_schemas_ship_as_package_data() -> None:
    shipped = {p.name for p in resources.files("schemas").iterdir() if p.name.endswith(".avsc")}
    assert shipped == {"event.avsc", "command.avsc", "status.avsc"}


def test_a_schema_is_parsed_once() -> None:
    assert load_schema("event") is load_schema("event")


@pytest.mark.parametrize(
    ("name", "field", "values"),
    [
        ("event", "type", EventType),
        ("event", "origin", Origin),
        ("command", "kind", CommandKind),
        ("status", "status", WorkflowStatus),
    ],
)
def test_string_coded_fields_document_every_value(
    name: SchemaName, field: str, values: type[StrEnum]
) -> None:
    doc = next(f["doc"] for f in _raw(name)["fields"] if f["name"] == field)
    missing = [member.value for member in values if not re.search(rf"\b{member.value}\b", doc)]
    assert not missing, f"{name}.avsc {field} doc lacks {missing}"
