"""The state of one workflow: what the plan folds its events into and the store keeps.

User payloads stay JSON text here. ``to_bytes`` writes a versioned, compact JSON
array (no pickle: the state store's changelog is topic data), from one field table
(:data:`STATE_FIELDS`) that every format version so far is read with.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from sagas.compact_json import compact_json
from sagas.engine.timers import node_of_timer
from sagas.errors import SerializationError
from sagas.events import ErrorInfo, StatusRecord, WorkflowStatus


class Phase(IntEnum):
    """Where one step stands in its forward run and, later, its compensation."""

    SCHEDULED = 1
    """An attempt is in flight (a command sent, or a child workflow running)."""
    RETRY_PENDING = 2
    """An attempt failed and the next one will be scheduled after a pause."""
    BACKOFF = 3
    """The pause before the next attempt is running (a timer)."""
    READY = 4
    """The pause is over; the next attempt is about to be scheduled."""
    SUCCEEDED = 5
    FAILED = 6
    """Failed for good, or abandoned because the workflow is failing or cancelled."""
    COMP_SCHEDULED = 7
    COMP_RETRY_PENDING = 8
    COMP_BACKOFF = 9
    COMP_READY = 10
    COMPENSATED = 11
    COMP_FAILED = 12


_STATUSES = {member.value: member for member in WorkflowStatus}
_PHASES = {member.value: member for member in Phase}


@dataclass(slots=True)
class StepRun:
    """One step's progress in one workflow."""

    phase: Phase
    attempt: int
    result: str | None = None
    error: ErrorInfo | None = None
    comp_attempt: int = 0
    child: str | None = None

    def copy(self) -> StepRun:
        return StepRun(
            self.phase, self.attempt, self.result, self.error, self.comp_attempt, self.child
        )


@dataclass(slots=True)
class WorkflowState:
    """Everything the plan needs to know about one workflow to decide what comes next."""

    workflow_id: str
    saga: str
    version: int
    status: WorkflowStatus
    started_ms: int
    updated_ms: int
    input: str
    parent: str | None = None
    cursor: int = 0
    """Index of the node the workflow is at (``len(plan.nodes)`` once past the last)."""
    entered: bool = False
    """Whether the node at ``cursor`` has been started."""
    steps: dict[str, StepRun] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    """Steps that succeeded, in completion order."""
    signals: dict[str, str] = field(default_factory=dict)
    """Payloads of the signals waits have taken, by signal name."""
    pending: list[tuple[str, str]] = field(default_factory=list)
    """Signals received before a wait for them, oldest first."""
    timers: dict[str, int] = field(default_factory=dict)
    """Encoded :class:`~sagas.engine.timers.TimerId` -> due time in ms; the processor keeps
    its due-time index from this."""
    committed: bool = False
    """Whether the point of no return (a pivot or retriable step) has succeeded."""
    cancel: str | None = None
    """The reason of an accepted cancel request."""
    error: ErrorInfo | None = None
    failed_step: str | None = None
    result: str | None = None
    heartbeats: dict[str, str] = field(default_factory=dict)
    """The details of each step's last heartbeat (JSON text), for its next attempt."""
    failed_compensation: str | None = None
    """The step whose compensation failed for good, leaving the workflow ``FAILED``."""
    last_rejection: str | None = None
    """Why the latest input the workflow refused (a signal) was refused."""
    run_id: str = ""
    """The id of the event that began this run (``started`` or ``continued_as_new``)."""
    previous_run_id: str | None = None
    """The run this one continued as new, if any."""
    updates: dict[str, str] = field(default_factory=dict)
    """Outcome (JSON text) of the latest updates by update id, for idempotent requests."""
    undo_for: int = 0
    """The parent's compensation attempt this completed child is undoing itself for."""
    unanswered: list[str] = field(default_factory=list)
    """Child steps whose start no processor of the child saga has answered in time."""
    search_attributes: dict[str, str | int | float | bool] = field(default_factory=dict)
    """The search attributes steps set (name -> value), latest value of each; those read
    from the input are not kept here."""

    def copy(self) -> WorkflowState:
        """A copy that can be changed without touching this state (containers are copied)."""
        return WorkflowState(
            self.workflow_id,
            self.saga,
            self.version,
            self.status,
            self.started_ms,
            self.updated_ms,
            self.input,
            self.parent,
            self.cursor,
            self.entered,
            {name: run.copy() for name, run in self.steps.items()},
            list(self.completed),
            dict(self.signals),
            list(self.pending),
            dict(self.timers),
            self.committed,
            self.cancel,
            self.error,
            self.failed_step,
            self.result,
            dict(self.heartbeats),
            self.failed_compensation,
            self.last_rejection,
            self.run_id,
            self.previous_run_id,
            dict(self.updates),
            self.undo_for,
            list(self.unanswered),
            dict(self.search_attributes),
        )

    def in_flight(self) -> list[str]:
        """Steps with an attempt or a compensation running."""
        return [
            name
            for name, run in self.steps.items()
            if run.phase is Phase.SCHEDULED or run.phase is Phase.COMP_SCHEDULED
        ]

    def status_record(self) -> StatusRecord:
        """The summary kept on the saga's status topic."""
        return StatusRecord(
            workflow_id=self.workflow_id,
            saga=self.saga,
            version=self.version,
            status=self.status,
            started_ms=self.started_ms,
            updated_ms=self.updated_ms,
            current_steps=tuple(self.in_flight()) + tuple(self._node_timers()),
            result=self.result,
            error=self.error,
            failed_step=self.failed_step,
            failed_compensation=self.failed_compensation,
            last_rejection=self.last_rejection,
            run_id=self.run_id or None,
            previous_run_id=self.previous_run_id,
        )

    def _node_timers(self) -> list[str]:
        """The sleeps and waits the workflow is in, named by their node."""
        node_timers = []
        for timer in self.timers:
            node = node_of_timer(timer)
            if node is not None:
                node_timers.append(node)
        return node_timers

    def to_bytes(self) -> bytes:
        """The state as compact JSON in the newest format (see :data:`STATE_FORMAT`)."""
        return STATE_FORMAT.write(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> WorkflowState:
        """A state read back from ``to_bytes`` of any format version so far.

        Raises ``SerializationError`` on bad data or an unknown format version.
        """
        return STATE_FORMAT.read(data)


def _error_out(error: ErrorInfo | None) -> list[Any] | None:
    return None if error is None else [error.type, error.message, error.non_retryable]


def _error_in(row: list[Any] | None) -> ErrorInfo | None:
    return None if row is None else ErrorInfo(row[0], row[1], bool(row[2]))


def _steps_out(steps: dict[str, StepRun]) -> dict[str, list[Any]]:
    return {
        name: [int(r.phase), r.attempt, r.result, _error_out(r.error), r.comp_attempt, r.child]
        for name, r in steps.items()
    }


def _steps_in(rows: dict[str, list[Any]]) -> dict[str, StepRun]:
    return {
        name: StepRun(_PHASES[s[0]], s[1], s[2], _error_in(s[3]), s[4], s[5])
        for name, s in rows.items()
    }


@dataclass(frozen=True, slots=True)
class StateField:
    """One attribute of :class:`WorkflowState` in the stored format.

    ``since`` is the format version that added it; rows of older versions do not
    hold it and read back with the attribute's default. ``out``/``back`` convert
    to and from JSON when the value is not JSON as it is.
    """

    name: str
    since: int = 1
    out: Callable[[Any], Any] | None = None
    back: Callable[[Any], Any] | None = None


class StateFormat:
    """The stored form of a workflow state: ``[version, field, field, ...]`` as JSON.

    Written from one field table, in the newest version (the largest ``since``), and
    read by one reader per version so far, each taking the fields that version had.
    A new field is one entry at the end of the table with the next ``since`` (and a
    default on the state type), so states already in changelog topics keep loading.
    """

    __slots__ = ("_readers", "_write", "state_type", "version")

    def __init__(
        self, fields: Sequence[StateField], state_type: type[WorkflowState] = WorkflowState
    ) -> None:
        versions = [f.since for f in fields]
        if versions != sorted(versions) or versions[0] != 1:
            raise ValueError("state fields are added at the end, in version order, from 1")
        # Rows are read back positionally, so the table follows the state type's fields.
        names = tuple(f.name for f in dataclasses.fields(state_type))
        if tuple(f.name for f in fields) != names[: len(fields)]:
            raise ValueError(f"state fields must be {state_type.__name__}'s fields, in order")
        self.version = versions[-1]
        self.state_type = state_type
        self._write = _row_writer(self.version, fields)
        self._readers = {
            version: _StateReader(state_type, tuple(f for f in fields if f.since <= version))
            for version in range(1, self.version + 1)
        }

    def write(self, state: WorkflowState) -> bytes:
        """``state`` as compact JSON in this format's newest version."""
        return compact_json(self._write(state)).encode()

    def read(self, data: bytes) -> WorkflowState:
        """A state from ``write`` of any version so far; ``SerializationError`` on bad data."""
        try:
            row = json.loads(data)
            reader = self._readers.get(row[0])
            if reader is None:
                raise ValueError(f"unknown state format {row[0]!r}")
            return reader.read(row)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise SerializationError(f"cannot read a workflow state: {exc}") from exc


class _StateReader:
    """Reads the rows of one format version: the fields that version had, in order."""

    __slots__ = ("_build", "_width")

    def __init__(self, state_type: type[WorkflowState], fields: tuple[StateField, ...]) -> None:
        self._build = _state_builder(state_type, fields)
        self._width = len(fields) + 1

    def read(self, row: list[Any]) -> WorkflowState:
        """The state a row of this version holds."""
        if len(row) != self._width:
            raise ValueError(f"a state of format {row[0]} has {self._width - 1} fields")
        return self._build(row)


# The writer and the readers are generated from the field table (as dataclasses
# generates __init__): a state is written and read for nearly every event, and
# generated code costs what a hand-written positional format did, with no loop over
# the table. Field names are the state type's own attribute names (checked above).


def _row_writer(version: int, fields: Sequence[StateField]) -> Callable[[Any], list[Any]]:
    namespace: dict[str, Any] = {}
    items = [str(version)]
    for i, f in enumerate(fields):
        if f.out is None:
            items.append(f"state.{f.name}")
        else:
            namespace[f"out{i}"] = f.out
            items.append(f"out{i}(state.{f.name})")
    exec(f"def write(state):\n    return [{', '.join(items)}]\n", namespace)
    writer: Callable[[Any], list[Any]] = namespace["write"]
    return writer


def _state_builder(
    state_type: type[WorkflowState], fields: Sequence[StateField]
) -> Callable[[list[Any]], WorkflowState]:
    namespace: dict[str, Any] = {"state_type": state_type}
    args = []
    for i, f in enumerate(fields, start=1):
        if f.back is None:
            args.append(f"row[{i}]")
        else:
            namespace[f"back{i}"] = f.back
            args.append(f"back{i}(row[{i}])")
    exec(f"def build(row):\n    return state_type({', '.join(args)})\n", namespace)
    builder: Callable[[list[Any]], WorkflowState] = namespace["build"]
    return builder


STATE_FIELDS: tuple[StateField, ...] = (
    StateField("workflow_id"),
    StateField("saga"),
    StateField("version"),
    StateField("status", out=lambda s: s.value, back=lambda v: _STATUSES[v]),
    StateField("started_ms"),
    StateField("updated_ms"),
    StateField("input"),
    StateField("parent"),
    StateField("cursor"),
    StateField("entered"),
    StateField("steps", out=_steps_out, back=_steps_in),
    StateField("completed"),
    StateField("signals"),
    StateField("pending", back=lambda rows: [(n, p) for n, p in rows]),
    StateField("timers"),
    StateField("committed"),
    StateField("cancel"),
    StateField("error", out=_error_out, back=_error_in),
    StateField("failed_step"),
    StateField("result"),
    StateField("heartbeats", since=2),
    StateField("failed_compensation", since=3),
    StateField("last_rejection", since=3),
    StateField("run_id", since=4),
    StateField("previous_run_id", since=4),
    StateField("updates", since=4),
    StateField("undo_for", since=4),
    StateField("unanswered", since=4),
    StateField("search_attributes", since=5),
)
"""The stored fields of a workflow state, in the order they are written."""

STATE_FORMAT = StateFormat(STATE_FIELDS)
"""How workflow states are stored (in the state store and its changelog topic)."""
