"""The records a saga's workflows are made of: events, commands and status.

These plain dataclasses are what the compiled plan reads and writes, what the
test kit keeps in memory, and what :mod:`schemas` encodes as Avro on the
topics. User payloads (inputs, step results, signal data) travel as JSON text
produced by their pydantic models, so that participants in any language can
read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    """Every kind of event in a saga's event log (``S.events``)."""

    # Inputs: written by clients, step workers and child workflows.
    START_REQUESTED = "start_requested"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    COMPENSATION_SUCCEEDED = "compensation_succeeded"
    COMPENSATION_FAILED = "compensation_failed"
    SIGNAL = "signal"
    CANCEL_REQUESTED = "cancel_requested"
    TERMINATE_REQUESTED = "terminate_requested"
    CHILD_ENDED = "child_ended"
    HEARTBEAT = "heartbeat"
    """A step attempt in flight is alive; its payload is the details the next attempt gets
    (``ctx.heartbeat_details``). Folded without a decision: it moves the attempt's
    heartbeat deadline and keeps the details. One named ``started``, with no payload, only
    reports that the attempt started (asked for by a command's ``start_deadline_ms``)."""
    REDRIVE_REQUESTED = "redrive_requested"
    """A dead-lettered record put back (``sagas dlq redrive``): the saga processor unparks
    the workflow, applies the record (carried base64 in the JSON payload ``value``), then
    the inputs held while the workflow was parked."""
    DISCARD_REQUESTED = "discard_requested"
    """A dead-lettered record given up (``sagas dlq discard``): the saga processor records
    ``dead_letter_discarded``, unparks the workflow and applies the inputs held meanwhile.
    The payload names the record: JSON ``dlq_partition`` and ``dlq_offset``."""
    SIGNAL_WITH_START = "signal_with_start"
    """Start the workflow unless it exists, and deliver a signal to it, in one record:
    ``name`` is the signal, ``payload`` the JSON object ``{"input": ..., "signal": ...}``."""
    UPDATE_REQUESTED = "update_requested"
    """Apply update ``name`` with ``payload``; ``event_id`` is the update id, and the
    processor's ``update_completed``/``update_rejected`` names it as its ``cause``."""
    CHILD_RUNNING = "child_running"
    """A child workflow tells its parent (``step``) that a processor of its saga started it."""
    COMPENSATE_REQUESTED = "compensate_requested"
    """A parent compensating its step asks its completed child workflow to undo itself;
    ``step`` and ``attempt`` are the parent's step and compensation attempt."""
    # Decisions: appended by the saga processor in the transaction that applies them.
    STARTED = "started"
    START_IGNORED = "start_ignored"
    STEP_SCHEDULED = "step_scheduled"
    STEP_TIMED_OUT = "step_timed_out"
    RETRY_SCHEDULED = "retry_scheduled"
    ANSWER_IGNORED = "answer_ignored"
    TIMER_STARTED = "timer_started"
    TIMER_FIRED = "timer_fired"
    SIGNAL_RECEIVED = "signal_received"
    SIGNAL_REJECTED = "signal_rejected"
    COMPENSATION_SCHEDULED = "compensation_scheduled"
    COMPENSATION_RETRY_SCHEDULED = "compensation_retry_scheduled"
    CHILD_STARTED = "child_started"
    WAIT_STARTED = "wait_started"
    BRANCH_TAKEN = "branch_taken"
    DECIDER_FAILED = "decider_failed"
    """A function of the saga that decides (a computed duration or deadline) raised or gave
    a value out of bounds: its node failed for good, with the error it gave."""
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"
    DEAD_LETTER_DISCARDED = "dead_letter_discarded"
    CONTINUED_AS_NEW = "continued_as_new"
    """This run ended and a new run of the same workflow id starts with ``payload`` as its
    input (the ``started`` after it, in the same transaction, names this run)."""
    UPDATE_COMPLETED = "update_completed"
    """An update applied: ``payload`` is ``{"value": <update payload>, "result": ...}``."""
    UPDATE_REJECTED = "update_rejected"
    """An update refused, by its validator or because it came too late; ``error`` says why."""


INPUT_TYPES = frozenset(
    {
        EventType.START_REQUESTED,
        EventType.STEP_SUCCEEDED,
        EventType.STEP_FAILED,
        EventType.COMPENSATION_SUCCEEDED,
        EventType.COMPENSATION_FAILED,
        EventType.SIGNAL,
        EventType.CANCEL_REQUESTED,
        EventType.TERMINATE_REQUESTED,
        EventType.CHILD_ENDED,
        EventType.HEARTBEAT,
        EventType.SIGNAL_WITH_START,
        EventType.UPDATE_REQUESTED,
        EventType.COMPENSATE_REQUESTED,
        EventType.CHILD_RUNNING,
    }
)
"""Events the saga processor applies when it reads them. Every other type is a decision
it appended itself in the transaction that applied it, so reading one back changes
nothing; replaying the log folds both kinds."""


class Origin(StrEnum):
    """Who wrote an event. The saga processor skips its own when it reads them back."""

    CLIENT = "client"
    WORKER = "worker"
    PROCESSOR = "processor"


class WorkflowStatus(StrEnum):
    """Where a workflow stands; the last five are final."""

    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TERMINATED = "TERMINATED"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        WorkflowStatus.COMPLETED,
        WorkflowStatus.COMPENSATED,
        WorkflowStatus.FAILED,
        WorkflowStatus.CANCELLED,
        WorkflowStatus.TERMINATED,
    }
)


class CommandKind(StrEnum):
    """Whether a command asks for a step's action or for its compensation."""

    ACTION = "action"
    COMPENSATE = "compensate"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a step, a compensation or a workflow failed."""

    type: str
    message: str
    non_retryable: bool = False


@dataclass(frozen=True, slots=True)
class Event:
    """One record of a saga's event log, keyed by ``workflow_id``.

    ``payload`` is JSON text: the saga input on ``start_requested``, a step's
    result on ``step_succeeded``, a signal's data on ``signal``, a workflow's
    result on ``completed``. ``name`` names the signal or the timer an event is
    about. ``parent`` is ``"<saga>/<workflow_id>/<step>"`` for a child workflow.
    ``search_attributes`` is the JSON object of the search attributes a step's action
    set, on its ``step_succeeded``.
    """

    event_id: str
    workflow_id: str
    saga: str
    version: int
    type: EventType
    origin: Origin
    time_ms: int
    step: str | None = None
    attempt: int = 0
    payload: str | None = None
    error: ErrorInfo | None = None
    name: str | None = None
    due_ms: int | None = None
    parent: str | None = None
    cause: str | None = None
    search_attributes: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A request to a participant to run one step's action or compensation.

    Published on the step's queue topic, keyed by ``workflow_id`` so that a
    workflow's commands stay in order. The answer goes to ``reply_topic`` as a
    ``step_succeeded``/``step_failed`` (or ``compensation_*``) event that
    repeats ``step`` and ``attempt``. ``idempotency_key`` is stable across
    attempts: ``"<workflow_id>/<step>/<kind>"``, with ``"/<run_id>"`` after it in a run
    continued as new.
    """

    command_id: str
    workflow_id: str
    saga: str
    version: int
    step: str
    attempt: int
    kind: CommandKind
    idempotency_key: str
    reply_topic: str
    time_ms: int
    deadline_ms: int | None = None
    input: str | None = None
    results: str | None = None
    signals: str | None = None
    heartbeat_details: str | None = None
    """JSON text: the details the last heartbeat of an earlier attempt of this step gave."""
    heartbeat_timeout_ms: int | None = None
    """The longest the attempt may go without a heartbeat; None: heartbeats are not watched."""
    start_deadline_ms: int | None = None
    """When the attempt fails unless a worker reported it started (a heartbeat named
    ``started``, sent before the function runs); None: no report is asked for."""


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """The latest summary of one workflow, kept on the compacted ``S.status`` topic."""

    workflow_id: str
    saga: str
    version: int
    status: WorkflowStatus
    started_ms: int
    updated_ms: int
    current_steps: tuple[str, ...] = ()
    result: str | None = None
    error: ErrorInfo | None = None
    failed_step: str | None = None
    parked: bool = False
    failed_compensation: str | None = None
    last_rejection: str | None = None
    run_id: str | None = None
    """The id of the workflow's current run (the id of the event that began it)."""
    previous_run_id: str | None = None
    """The run this one continued (``continue_as_new``); None for a first run."""


def idempotency_key(
    workflow_id: str, step: str, kind: CommandKind, run_id: str | None = None
) -> str:
    """The key an action passes downstream; the same for every attempt.

    A run continued as new (``run_id`` given) has keys of its own, so that the next
    period's charge is not taken for the last one's."""
    key = f"{workflow_id}/{step}/{kind.value}"
    return key if run_id is None else f"{key}/{run_id}"
