"""Typing and JSON handling of user payloads: saga inputs, step results and signal data.

Payloads stay JSON text inside the plan; these helpers turn them into the user's
pydantic types only where user code needs them (actions, branches, child inputs).
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, PydanticSchemaGenerationError, TypeAdapter

from sagas.errors import DefinitionError, SerializationError

ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


def adapter_for(
    annotation: Any, what: str, *, saga: str, step: str | None = None
) -> TypeAdapter[Any]:
    """A pydantic adapter for ``annotation``; raises ``DefinitionError`` if it cannot be JSON."""
    if annotation is None or annotation is type(None):
        return TypeAdapter(type(None))
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        adapter.json_schema()
    except (PydanticSchemaGenerationError, TypeError, ValueError) as exc:
        raise DefinitionError(
            f"{what} {annotation!r} cannot be serialized as JSON; use a pydantic model "
            "or a JSON-able annotation",
            saga=saga,
            step=step,
        ) from exc
    return adapter


def return_annotation(fn: Callable[..., Any], *, saga: str, step: str) -> Any:
    """The declared result type of an action, ``Any`` when it has no annotation."""
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError) as exc:
        raise DefinitionError(
            f"cannot resolve the type annotations of {fn.__qualname__}: {exc}",
            saga=saga,
            step=step,
        ) from exc
    if "return" not in hints:
        return Any
    return hints["return"]


def check_model_type(model: Any, what: str, *, saga: str) -> type[BaseModel]:
    """``model`` if it is a pydantic model class; raises ``DefinitionError`` otherwise."""
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        raise DefinitionError(
            f"{what} must be a pydantic BaseModel subclass, got {model!r}", saga=saga
        )
    return model


def is_json(text: str) -> bool:
    """Whether ``text`` parses as JSON."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def join_object(items: Mapping[str, str]) -> str:
    """A JSON object whose values are already-JSON texts, built without parsing them.

    Keys are step or signal names, which compilation restricts to characters that
    need no escaping.
    """
    return "{" + ",".join([f'"{key}":{value}' for key, value in items.items()]) + "}"


@dataclass(frozen=True, slots=True)
class PayloadTypes:
    """The user's types of one saga version: its input, each step's result, each signal."""

    saga: str
    input_model: type[BaseModel]
    results: Mapping[str, TypeAdapter[Any]]
    signals: Mapping[str, TypeAdapter[Any]]

    def parse_input(self, text: str) -> BaseModel:
        """The saga input as its model; raises ``SerializationError`` if it does not fit."""
        try:
            return self.input_model.model_validate_json(text)
        except ValueError as exc:
            raise SerializationError(
                f"the input does not match {self.input_model.__name__}: {exc}", saga=self.saga
            ) from exc

    def parse_result(self, step: str, value: Any) -> Any:
        """A step's decoded JSON result as its declared type."""
        adapter = self.results.get(step, ANY_ADAPTER)
        try:
            return adapter.validate_python(value)
        except ValueError as exc:
            raise SerializationError(
                f"the result of step {step!r} does not match its type: {exc}",
                saga=self.saga,
                step=step,
            ) from exc

    def parse_signal(self, name: str, value: Any) -> Any:
        """A signal's decoded JSON payload as its declared type."""
        adapter = self.signals.get(name, ANY_ADAPTER)
        try:
            return adapter.validate_python(value)
        except ValueError as exc:
            raise SerializationError(
                f"the payload of signal {name!r} does not match its type: {exc}", saga=self.saga
            ) from exc

    def dump_result(self, step: str, value: Any) -> str:
        """A step's result as JSON text."""
        adapter = self.results.get(step, ANY_ADAPTER)
        try:
            return adapter.dump_json(adapter.validate_python(value)).decode()
        except ValueError as exc:
            raise SerializationError(
                f"the result of step {step!r} cannot be serialized: {exc}",
                saga=self.saga,
                step=step,
                non_retryable=True,
            ) from exc
