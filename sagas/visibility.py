"""What a saga declares for visibility: search attributes, queries and retention.

A saga names the values its workflows are searched by (``SearchAttribute``), the
read-only questions a running workflow answers (``@saga.query``), and how long an ended
workflow is kept (``retention``). :func:`visibility_of` checks a definition's
declarations into the :class:`Visibility` its compiled plan carries; the processors
index, answer and expire from that.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from sagas.compact_json import compact_json
from sagas.context import WorkflowView
from sagas.errors import DefinitionError, SagaError
from sagas.payloads import PayloadTypes

InputT = TypeVar("InputT", bound=BaseModel)

SearchValue = str | int | float | bool
"""What a search attribute holds."""

_ATTRIBUTE_TYPES: tuple[type, ...] = (str, int, float, bool)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class SearchAttribute(Generic[InputT]):
    """A named, typed value a workflow is searched by, taken from its input or set by a step.

    ``SearchAttribute("customer_id", str, lambda order: order.customer_id)`` is read from
    the input once; ``SearchAttribute("order_total", int)`` (no ``from_input``) is set by
    step actions with ``ctx.set_search_attribute("order_total", 120)``.
    """

    name: str
    type: type[SearchValue]
    """``str``, ``int``, ``float`` or ``bool``; list filters are compared as this type."""
    from_input: Callable[[InputT], SearchValue | None] | None = None
    """Reads the value from the saga input (returning ``None``: the workflow has no such
    value); ``None`` here: the attribute is set by steps instead."""


class QueryView(WorkflowView[InputT]):
    """What a query function reads: the workflow view plus where the workflow stands."""

    __slots__ = ("current_steps", "status")

    def __init__(
        self,
        *,
        types: PayloadTypes,
        workflow_id: str,
        version: int,
        input_json: str,
        results: Mapping[str, Any],
        signals: Mapping[str, Any],
        status: str,
        current_steps: tuple[str, ...],
    ) -> None:
        super().__init__(
            types=types,
            workflow_id=workflow_id,
            version=version,
            input_json=input_json,
            results=results,
            signals=signals,
        )
        self.status = status
        """The workflow status (``RUNNING``, ``COMPLETED``, ...)."""
        self.current_steps = current_steps
        """Steps in flight and the sleep or wait the workflow is in."""


QueryFunction = Callable[[QueryView[Any]], Any]
"""A read-only function of a workflow's view, returning a JSON-able value."""


@dataclass(frozen=True, slots=True)
class Visibility:
    """A compiled saga version's search attributes, queries and retention."""

    attributes: Mapping[str, SearchAttribute[Any]] = field(default_factory=dict)
    queries: Mapping[str, QueryFunction] = field(default_factory=dict)
    retention: timedelta | None = None
    """How long an ended workflow is kept (``None``: for ever, unless the deployment says)."""


def visibility_of(
    saga: str,
    attributes: Iterable[SearchAttribute[Any]],
    queries: Mapping[str, QueryFunction],
    retention: timedelta | None,
) -> Visibility:
    """Check a definition's declarations; raises :class:`DefinitionError` naming the fault."""
    checked: dict[str, SearchAttribute[Any]] = {}
    for attribute in attributes:
        if not isinstance(attribute, SearchAttribute):
            raise DefinitionError(
                f"search attributes must be SearchAttribute, got {attribute!r}", saga=saga
            )
        if not isinstance(attribute.name, str) or not _NAME.fullmatch(attribute.name):
            raise DefinitionError(
                f"search attribute name {attribute.name!r} must be an identifier of at most "
                "63 characters",
                saga=saga,
            )
        if attribute.name in checked:
            raise DefinitionError(
                f"search attribute {attribute.name!r} is declared twice", saga=saga
            )
        if attribute.type not in _ATTRIBUTE_TYPES:
            raise DefinitionError(
                f"search attribute {attribute.name!r} has type {attribute.type!r}; "
                "use str, int, float or bool",
                saga=saga,
            )
        if attribute.from_input is not None and not callable(attribute.from_input):
            raise DefinitionError(
                f"search attribute {attribute.name!r}: from_input must be a function of the "
                "input (or None for an attribute steps set)",
                saga=saga,
            )
        checked[attribute.name] = attribute
    for name, function in queries.items():
        if not _NAME.fullmatch(name):
            raise DefinitionError(f"query name {name!r} must be an identifier", saga=saga)
        if not callable(function):
            raise DefinitionError(f"query {name!r} is not callable", saga=saga)
    if retention is not None and (
        not isinstance(retention, timedelta) or retention <= timedelta(0)
    ):
        raise DefinitionError(
            f"retention must be a positive timedelta, got {retention!r}", saga=saga
        )
    return Visibility(dict(checked), dict(queries), retention)


def attribute_value(attribute: SearchAttribute[Any], input_model: BaseModel) -> SearchValue | None:
    """The attribute's value for one workflow input, as its declared type.

    Raises :class:`SagaError` when the function fails or returns a value of another type;
    an attribute set by steps has no value from the input.
    """
    if attribute.from_input is None:
        return None
    try:
        value = attribute.from_input(input_model)
    except Exception as exc:
        raise SagaError(f"search attribute {attribute.name!r} failed: {exc}") from exc
    if value is None:
        return None
    return coerce(attribute, value)


def coerce(attribute: SearchAttribute[Any], value: object) -> SearchValue:
    """``value`` as the attribute's type (from a function or from a filter's text)."""
    kind = attribute.type
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError(f"{value!r} is not true or false")
        if kind is str:
            if not isinstance(value, str):
                raise ValueError(f"{value!r} is not text")
            if "\0" in value:
                raise ValueError("text may not contain NUL")
            return value
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value!r} is not a whole number")
            whole: int = int(value)  # type: ignore[call-overload]
            return whole
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise SagaError(
            f"search attribute {attribute.name!r} takes {kind.__name__} values: {exc}"
        ) from exc


def step_value(attribute: SearchAttribute[Any], value: object) -> SearchValue:
    """``value`` as the attribute's type, taken strictly (a step's value, not a filter's text).

    Only a whole number widens (to ``float``); raises :class:`SagaError` otherwise.
    """
    kind = attribute.type
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind:
        problem = f"got {type(value).__name__} {reprlib.repr(value)}"
    elif isinstance(value, str) and "\0" in value:
        problem = "text may not contain NUL"
    elif isinstance(value, float) and not math.isfinite(value):
        problem = f"got {value!r}"
    else:
        checked: SearchValue = value
        return checked
    raise SagaError(f"search attribute {attribute.name!r} takes {kind.__name__} values: {problem}")


class StepAttributes:
    """The search attributes one attempt of a step's action sets, checked as they are set.

    They go out with the attempt's ``step_succeeded`` answer only: an attempt that fails
    sets nothing.
    """

    __slots__ = ("_declared", "saga", "step", "values", "workflow_id")

    def __init__(
        self,
        *,
        saga: str,
        step: str,
        workflow_id: str,
        declared: Mapping[str, SearchAttribute[Any]],
    ) -> None:
        self.saga = saga
        self.step = step
        self.workflow_id = workflow_id
        self._declared = declared
        self.values: dict[str, SearchValue] = {}

    def set(self, name: str, value: object) -> None:
        """Record ``value`` for ``name``; :class:`SagaError` naming saga, step and attribute
        when the saga declares no such step-set attribute or the value has another type."""
        attribute = self._declared.get(name)
        where = f"saga {self.saga!r}, step {self.step!r}"
        if attribute is None or attribute.from_input is not None:
            settable = sorted(n for n, a in self._declared.items() if a.from_input is None)
            why = (
                "is not declared"
                if attribute is None
                else "is read from the input, so steps cannot set it"
            )
            raise SagaError(
                f"{where}: search attribute {name!r} {why}; steps may set "
                f"{', '.join(map(repr, settable)) or 'none'} (declare "
                f"SearchAttribute({name!r}, <type>) without from_input)",
                saga=self.saga,
                workflow_id=self.workflow_id,
                step=self.step,
            )
        try:
            self.values[name] = step_value(attribute, value)
        except SagaError as exc:
            raise SagaError(
                f"{where}: {exc.message}",
                saga=self.saga,
                workflow_id=self.workflow_id,
                step=self.step,
            ) from None

    def to_json(self) -> str | None:
        """The values as the JSON object an answer carries (``None`` when none was set)."""
        if not self.values:
            return None
        return compact_json(self.values)
