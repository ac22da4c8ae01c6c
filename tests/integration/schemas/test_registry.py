"""The registry client against a real Apicurio Registry (Confluent-compatible API)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from urllib.parse import quote

from schemas.registry import SchemaRegistryClient


def _schema(name: str) -> str:
    record = {"type": "record", "name": name, "fields": [{"name": "id", "type": "string"}]}
    return json.dumps(record, separators=(",", ":"))


def test_registering_again_gives_the_same_id_and_the_id_gives_the_schema(
    schema_registry: str, unique_name: Callable[[str], str]
) -> None:
    client = SchemaRegistryClient(schema_registry + "/")
    subject = unique_name("value")
    text = _schema("Again")
    first = client.register(subject, text)
    assert client.register(subject, text) == first
    # A second process (no cache) is answered with the same id, and reads it back.
    other = SchemaRegistryClient(schema_registry)
    assert other.register(subject, text) == first
    assert json.loads(other.schema_text(first)) == json.loads(text)


def test_an_odd_subject_name_is_registered_under_its_own_name(
    schema_registry: str, unique_name: Callable[[str], str]
) -> None:
    subject = f"odd/{unique_name('subject name')}-value"
    schema_id = SchemaRegistryClient(schema_registry).register(subject, _schema("Odd"))
    url = f"{schema_registry}/subjects/{quote(subject, safe='')}/versions/latest"
    with urllib.request.urlopen(url, timeout=10) as answer:
        latest = json.loads(answer.read())
    assert latest["subject"] == subject
    assert latest["id"] == schema_id


def test_compatibility_is_checked_against_the_latest_version(
    schema_registry: str, unique_name: Callable[[str], str]
) -> None:
    client = SchemaRegistryClient(schema_registry)
    subject = unique_name("value")
    first = _schema("Evolving")
    # A subject without versions: Confluent answers 404 (None), Apicurio "compatible".
    assert client.check_compatibility(subject, first) is not False
    client.register(subject, first)
    client.set_compatibility(subject, "BACKWARD")
    added = json.loads(first)
    added["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    assert client.check_compatibility(subject, json.dumps(added)) is True
    required = json.loads(first)
    required["fields"].append({"name": "must", "type": "string"})
    assert client.check_compatibility(subject, json.dumps(required)) is False
