"""A list request over a saga's workflows, as the client sends it and a processor reads it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sagas.compact_json import compact_json
from sagas.errors import SagaError
from sagas.events import WorkflowStatus

Operator = Literal["=", "!=", ">=", ">", "<=", "<"]
_WHERE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|>|<)\s*(.*)$", re.DOTALL)
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AttributeFilter:
    """One condition on a search attribute: ``name op value``.

    ``value`` is compared as the attribute's declared type; text from a command line is
    converted by the processor, which knows the type.
    """

    name: str
    op: Operator
    value: str | int | float | bool

    @classmethod
    def parse(cls, text: str) -> AttributeFilter:
        """``customer_id=c-7``, ``total>=10``, ``total<20``; raises :class:`SagaError`."""
        match = _WHERE.match(text.strip())
        if match is None:
            raise SagaError(f"cannot read filter {text!r}: write attr=value, attr>=value, ...")
        name, op, value = match.groups()
        return cls(name, op, value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class WorkflowSearch:
    """Which workflows to list, newest start first, one page at a time."""

    status: tuple[str, ...] = ()
    """Any of these statuses (empty: any)."""
    version: int | None = None
    step: str | None = None
    """A step in flight, or the sleep or wait the workflow is in."""
    parked: bool | None = None
    started_since_ms: int | None = None
    """Started at or after (inclusive)."""
    started_until_ms: int | None = None
    """Started before (exclusive)."""
    ended_since_ms: int | None = None
    ended_until_ms: int | None = None
    where: tuple[AttributeFilter, ...] = field(default=())
    limit: int = 100
    cursor: str | None = None
    """Where the previous page ended (its ``next_cursor``)."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise SagaError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        unknown = [status for status in self.status if status not in WorkflowStatus.__members__]
        if unknown:
            raise SagaError(
                f"no such status: {', '.join(unknown)} (one of {', '.join(WorkflowStatus)})"
            )

    def to_json(self) -> dict[str, Any]:
        """The request as a JSON object."""
        return {
            "status": list(self.status),
            "version": self.version,
            "step": self.step,
            "parked": self.parked,
            "started_since_ms": self.started_since_ms,
            "started_until_ms": self.started_until_ms,
            "ended_since_ms": self.ended_since_ms,
            "ended_until_ms": self.ended_until_ms,
            "where": [[f.name, f.op, f.value] for f in self.where],
            "limit": self.limit,
            "cursor": self.cursor,
        }

    @classmethod
    def from_json(cls, data: object) -> WorkflowSearch:
        """A request read back from :meth:`to_json`; raises :class:`SagaError` if malformed."""
        try:
            if not isinstance(data, dict):
                raise TypeError("not an object")
            where = tuple(AttributeFilter(str(n), op, v) for n, op, v in data.get("where", ()))
            for condition in where:
                if condition.op not in ("=", "!=", ">=", ">", "<=", "<"):
                    raise ValueError(f"unknown operator {condition.op!r}")
            return cls(
                status=tuple(str(s) for s in data.get("status", ())),
                version=_optional_int(data.get("version")),
                step=data.get("step"),
                parked=data.get("parked"),
                started_since_ms=_optional_int(data.get("started_since_ms")),
                started_until_ms=_optional_int(data.get("started_until_ms")),
                ended_since_ms=_optional_int(data.get("ended_since_ms")),
                ended_until_ms=_optional_int(data.get("ended_until_ms")),
                where=where,
                limit=int(data.get("limit", 100)),
                cursor=data.get("cursor"),
            )
        except (TypeError, ValueError) as exc:
            raise SagaError(f"malformed list request: {exc}") from exc


def cursor_of(started_ms: int, workflow_id: str) -> str:
    """The cursor of a page that ended at this workflow."""
    return compact_json([started_ms, workflow_id])


def parse_cursor(cursor: str) -> tuple[int, str]:
    """The (start time, workflow id) a cursor names; raises :class:`SagaError`."""
    try:
        started, wid = json.loads(cursor)
        return int(started), str(wid)
    except (TypeError, ValueError) as exc:
        raise SagaError(f"malformed cursor {cursor!r}") from exc


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
