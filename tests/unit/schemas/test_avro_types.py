"""Avro schemas of pydantic types: every mapping, and that fastavro accepts the result."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any, Literal

import fastavro
import pytest
from pydantic import BaseModel, Field

from schemas.avro_types import UnsupportedTypeError, avro_schema
from schemas.step_contracts import saga_contracts

NS = "io.kafkasagas.contracts.test"


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    """Where to ship."""

    street: str
    city: str


class Order(BaseModel):
    order_id: str
    quantity: int
    price: float
    gift: bool
    blob: bytes
    placed_at: dt.datetime
    due: dt.date
    ref: uuid.UUID
    total: Decimal = Field(max_digits=12, decimal_places=2)
    loose: Decimal
    note: str | None = None
    colour: Colour = Colour.RED
    mode: Literal["fast", "slow"]
    tags: list[str] = Field(default_factory=list)
    counts: dict[str, int]
    ship_to: Address
    bill_to: Address | None = None


def _fields(schema: Any) -> dict[str, Any]:
    return {f["name"]: f for f in schema["fields"]}


def test_a_model_maps_field_by_field() -> None:
    schema = avro_schema(Order, name="OrderInput", namespace=NS)
    fields = _fields(schema)
    assert schema["type"] == "record"
    assert schema["name"] == "Order"
    assert fields["order_id"]["type"] == "string"
    assert fields["quantity"]["type"] == "long"
    assert fields["price"]["type"] == "double"
    assert fields["gift"]["type"] == "boolean"
    assert fields["blob"]["type"] == "bytes"
    assert fields["placed_at"]["type"] == {"type": "long", "logicalType": "timestamp-micros"}
    assert fields["due"]["type"] == {"type": "int", "logicalType": "date"}
    assert fields["ref"]["type"] == {"type": "string", "logicalType": "uuid"}
    assert fields["total"]["type"] == {
        "type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2
    }  # fmt: skip
    assert fields["loose"]["type"] == "string"
    assert fields["note"] == {"name": "note", "type": ["null", "string"], "default": None}
    assert fields["colour"]["type"]["symbols"] == ["red", "green"]
    assert fields["colour"]["default"] == "red"
    assert fields["mode"]["type"]["type"] == "enum"
    assert fields["mode"]["type"]["symbols"] == ["fast", "slow"]
    assert fields["tags"] == {"name": "tags", "type": {"type": "array", "items": "string"},
                              "default": []}  # fmt: skip
    assert fields["counts"]["type"] == {"type": "map", "values": "long"}
    assert fields["ship_to"]["type"]["name"] == "Address"
    assert fields["ship_to"]["type"]["doc"] == "Where to ship."
    # A record is defined once and named afterwards.
    assert fields["bill_to"]["type"] == ["null", f"{NS}.Address"]
    assert fields["bill_to"]["default"] is None


def test_fastavro_accepts_and_round_trips_the_schema() -> None:
    parsed = fastavro.parse_schema(avro_schema(Address, name="A", namespace=NS))
    assert fastavro.validation.validate({"street": "Main", "city": "Oslo"}, parsed)


def test_primitive_and_container_results() -> None:
    assert avro_schema(int, name="R", namespace=NS) == "long"
    assert avro_schema(None, name="R", namespace=NS) == "null"
    assert avro_schema(list[Address], name="R", namespace=NS)["items"]["name"] == "Address"
    assert avro_schema(int | str, name="R", namespace=NS) == ["long", "string"]


@pytest.mark.parametrize("annotation", [Any, dict[int, str], object, tuple[int, str]])
def test_types_without_an_avro_schema_are_refused(annotation: Any) -> None:
    with pytest.raises(UnsupportedTypeError):
        avro_schema(annotation, name="R", namespace=NS)


def test_saga_contracts_name_subjects_and_skip_untyped_results() -> None:
    contracts = saga_contracts(
        "shop-order",
        version=3,
        prefix="prod.",
        input_type=Address,
        steps={"charge": ("payments", Order), "notify": ("mail", Any)},
        signals={"approved": Address, "poke": Any},
    )
    assert [(c.subject, c.role, c.queue) for c in contracts] == [
        ("prod.shop-order.v3.step.charge.input-value", "input", "payments"),
        ("prod.shop-order.v3.step.charge.result-value", "result", "payments"),
        ("prod.shop-order.v3.step.notify.input-value", "input", "mail"),
        ("prod.shop-order.v3.signal.approved-value", "signal", None),
    ]
    assert contracts[0].file_name == "prod.shop-order.v3.step.charge.input.avsc"
    assert contracts[1].schema["namespace"] == "io.kafkasagas.contracts.shop_order"
