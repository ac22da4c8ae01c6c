"""The state of one workflow: what the plan folds its events into and the store keeps.

User payloads stay JSON text here. ``to_bytes`` writes a versioned, compact JSON
array (no pickle: the state store's changelog is topic data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from sagas.errors import SerializationError
from sagas.events import ErrorInfo, StatusRecord, WorkflowStatus

FORMAT_VERSION = 1


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
    """Timer id -> due time in ms; the processor keeps its due-time index from this."""
    committed: bool = False
    """Whether the point of no return (a pivot or retriable step) has succeeded."""
    cancel: str | None = None
    """The reason of an accepted cancel request."""
    error: ErrorInfo | None = None
    failed_step: str | None = None
    result: str | None = None

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
            current_steps=tuple(self.in_flight())
            + tuple(t[2:] for t in self.timers if t.startswith(("s:", "w:"))),
            result=self.result,
            error=self.error,
            failed_step=self.failed_step,
        )

    def to_bytes(self) -> bytes:
        """The state as compact, versioned JSON."""
        steps = {
            name: [int(r.phase), r.attempt, r.result, _error_out(r.error), r.comp_attempt, r.child]
            for name, r in self.steps.items()
        }
        return json.dumps(
            [
                FORMAT_VERSION,
                self.workflow_id,
                self.saga,
                self.version,
                self.status.value,
                self.started_ms,
                self.updated_ms,
                self.input,
                self.parent,
                self.cursor,
                self.entered,
                steps,
                self.completed,
                self.signals,
                self.pending,
                self.timers,
                self.committed,
                self.cancel,
                _error_out(self.error),
                self.failed_step,
                self.result,
            ],
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> WorkflowState:
        """A state read back from ``to_bytes``; raises ``SerializationError`` on bad data."""
        try:
            row = json.loads(data)
            if row[0] != FORMAT_VERSION:
                raise ValueError(f"unknown state format {row[0]!r}")
            steps = {
                name: StepRun(_PHASES[s[0]], s[1], s[2], _error_in(s[3]), s[4], s[5])
                for name, s in row[11].items()
            }
            return cls(
                row[1],
                row[2],
                row[3],
                _STATUSES[row[4]],
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                row[10],
                steps,
                row[12],
                row[13],
                [(n, p) for n, p in row[14]],
                row[15],
                row[16],
                row[17],
                _error_in(row[18]),
                row[19],
                row[20],
            )
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise SerializationError(f"cannot read a workflow state: {exc}") from exc


def _error_out(error: ErrorInfo | None) -> list[Any] | None:
    return None if error is None else [error.type, error.message, error.non_retryable]


def _error_in(row: list[Any] | None) -> ErrorInfo | None:
    return None if row is None else ErrorInfo(row[0], row[1], bool(row[2]))
