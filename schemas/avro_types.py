"""Avro schemas for Python type annotations: pydantic models, primitives, containers, enums.

A saga's step inputs, step results and signal payloads are pydantic types; these
functions give each one an Avro schema, the typed contract a participant written in
another language codes against. The mapping:

==============================  ==============================================================
Python                          Avro
==============================  ==============================================================
``str`` / ``int`` / ``float``   ``string`` / ``long`` / ``double``
``bool`` / ``bytes`` / None     ``boolean`` / ``bytes`` / ``null``
``datetime`` / ``date``         ``long`` timestamp-micros / ``int`` date
``time`` / ``UUID``             ``long`` time-micros / ``string`` uuid
``Decimal``                     ``bytes`` decimal when ``max_digits`` and ``decimal_places``
                                are set, else ``string`` (its exact text)
``X | None``                    union with ``null`` (null first when the default is None)
``X | Y``                       union
``list[X]``, ``set``, tuple     ``array``
``dict[str, X]``                ``map``
a ``BaseModel``                 a ``record`` named like the class, defined once, then named
an ``Enum`` / ``Literal``       an ``enum`` when every value is a string usable as a symbol,
                                else the values' type
==============================  ==============================================================

Pure functions: nothing here reads a topic or a registry.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
import typing
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sagas.errors import SerializationError

AvroSchema = str | dict[str, Any] | list[Any]
"""A parsed Avro schema: a type name, a complex type, or a union."""

_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PRIMITIVES: dict[Any, AvroSchema] = {
    str: "string",
    int: "long",
    float: "double",
    bool: "boolean",
    bytes: "bytes",
    type(None): "null",
    None: "null",
    dt.datetime: {"type": "long", "logicalType": "timestamp-micros"},
    dt.date: {"type": "int", "logicalType": "date"},
    dt.time: {"type": "long", "logicalType": "time-micros"},
    uuid.UUID: {"type": "string", "logicalType": "uuid"},
}


class UnsupportedTypeError(SerializationError):
    """A type has no Avro schema (``Any``, a dict with non-string keys, an object)."""


def avro_schema(annotation: Any, *, name: str, namespace: str) -> AvroSchema:
    """The Avro schema of ``annotation``; ``name`` names the record or enum it may need.

    Records of nested models are named after their classes in ``namespace``; each is
    defined at its first use and referred to by full name afterwards, as Avro requires.
    """
    return _Mapper(namespace).schema(annotation, name)


class _Mapper:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.defined: set[str] = set()

    def schema(self, annotation: Any, name: str, field: FieldInfo | None = None) -> AvroSchema:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.schema(args[0], name, field)
        if annotation is Decimal:
            return _decimal(field)
        if annotation in _PRIMITIVES:
            return _PRIMITIVES[annotation]
        if origin in (typing.Union, types.UnionType):
            return self.union(args, name, field)
        if origin is typing.Literal:
            return self.literal(args, name)
        if origin in (list, set, frozenset, tuple) or annotation in (list, set, frozenset):
            items = [a for a in args if a is not Ellipsis]
            if origin is tuple and len(set(items)) > 1:
                raise UnsupportedTypeError(
                    f"{name}: a tuple of mixed types {annotation!r} has no Avro array schema"
                )
            if not items:
                raise UnsupportedTypeError(f"{name}: {annotation!r} names no item type")
            return {"type": "array", "items": self.schema(items[0], f"{name}Item")}
        if origin is dict or annotation is dict:
            if len(args) != 2 or args[0] is not str:
                raise UnsupportedTypeError(
                    f"{name}: {annotation!r} is not dict[str, X]; Avro maps have string keys"
                )
            return {"type": "map", "values": self.schema(args[1], f"{name}Value")}
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return self.enum(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.record(annotation)
        raise UnsupportedTypeError(f"{name}: {annotation!r} has no Avro schema")

    def union(self, args: tuple[Any, ...], name: str, field: FieldInfo | None) -> AvroSchema:
        branches: list[AvroSchema] = []
        for arg in args:
            branch = self.schema(arg, name, field)
            branches.extend(branch if isinstance(branch, list) else [branch])
        nullable = "null" in branches
        if nullable and field is not None and field.default is None:
            # An Avro default must match the first branch.
            branches.remove("null")
            branches.insert(0, "null")
        return branches

    def literal(self, values: tuple[Any, ...], name: str) -> AvroSchema:
        if all(isinstance(v, str) and _SYMBOL.match(v) for v in values):
            return self.named_enum(name, [str(v) for v in values], None)
        kinds = {type(v) for v in values}
        if len(kinds) != 1:
            raise UnsupportedTypeError(f"{name}: a Literal of mixed types has no Avro schema")
        return self.schema(kinds.pop(), name)

    def enum(self, cls: type[enum.Enum]) -> AvroSchema:
        values = [member.value for member in cls]
        if all(isinstance(v, str) and _SYMBOL.match(v) for v in values):
            return self.named_enum(cls.__name__, values, _doc(cls))
        kinds = {type(v) for v in values}
        if len(kinds) != 1:
            raise UnsupportedTypeError(
                f"{cls.__name__}: an enum of mixed values has no Avro schema"
            )
        return self.schema(kinds.pop(), cls.__name__)

    def named_enum(self, name: str, symbols: list[str], doc: str | None) -> AvroSchema:
        full = f"{self.namespace}.{name}"
        if full in self.defined:
            return full
        self.defined.add(full)
        schema: dict[str, Any] = {"type": "enum", "name": name, "namespace": self.namespace}
        if doc:
            schema["doc"] = doc
        schema["symbols"] = symbols
        return schema

    def record(self, model: type[BaseModel]) -> AvroSchema:
        full = f"{self.namespace}.{model.__name__}"
        if full in self.defined:
            return full
        self.defined.add(full)
        fields = []
        for field_name, info in model.model_fields.items():
            type_name = model.__name__ + "".join(p.title() for p in field_name.split("_"))
            avro: dict[str, Any] = {
                "name": field_name,
                "type": self.schema(info.annotation, type_name, info),
            }
            if info.description:
                avro["doc"] = info.description
            default = _default(info)
            if default is not _NO_DEFAULT:
                avro["default"] = default
            fields.append(avro)
        schema: dict[str, Any] = {"type": "record", "name": model.__name__}
        schema["namespace"] = self.namespace
        doc = _doc(model)
        if doc:
            schema["doc"] = doc
        schema["fields"] = fields
        return schema


_NO_DEFAULT = object()


def _default(info: FieldInfo) -> Any:
    """The field's default as an Avro default, when it has a plain one Avro can hold."""
    if info.is_required():
        return _NO_DEFAULT
    default = info.default
    if default is None or isinstance(default, bool | int | float | str):
        return default
    if isinstance(default, enum.Enum) and isinstance(default.value, str):
        return default.value
    if info.default_factory in (list, dict, set):
        return [] if info.default_factory in (list, set) else {}
    return _NO_DEFAULT


def _decimal(field: FieldInfo | None) -> AvroSchema:
    digits = places = None
    for item in field.metadata if field is not None else ():
        digits = getattr(item, "max_digits", digits)
        places = getattr(item, "decimal_places", places)
    if isinstance(digits, int) and isinstance(places, int):
        return {"type": "bytes", "logicalType": "decimal", "precision": digits, "scale": places}
    return "string"


def _doc(cls: type) -> str | None:
    doc = cls.__doc__
    inherited = (BaseModel.__doc__, enum.Enum.__doc__, "An enumeration.")
    if not doc or doc in inherited or doc.startswith(cls.__name__ + "("):
        return None
    return " ".join(doc.split())
