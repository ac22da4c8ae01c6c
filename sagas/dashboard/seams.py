"""What the dashboard reads and does, as small interfaces, so each source can be replaced.

Today every interface is served by the client's readers over Kafka
(:mod:`sagas.dashboard.kafka_sources`). A processor-served list and search API can replace
the status-topic scan behind :class:`WorkflowLister`, a lag reader that measures seconds
can replace the record-only one behind :class:`LagReader`, without touching the pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sagas.events import Event, StatusRecord, WorkflowStatus


@dataclass(frozen=True, slots=True)
class WorkflowQuery:
    """A search over one saga's workflows: id text, status, and which page of results."""

    saga: str
    text: str = ""
    status: WorkflowStatus | None = None
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True, slots=True)
class WorkflowPage:
    """One page of a search, newest update first, with how many workflows matched in all."""

    rows: tuple[StatusRecord, ...]
    total: int
    page: int
    pages: int


class WorkflowLister(Protocol):
    """Lists and counts a saga's workflows by status."""

    def search(self, query: WorkflowQuery) -> WorkflowPage:
        """The page of workflows ``query`` asks for."""
        ...

    def counts(self, saga: str) -> Mapping[WorkflowStatus, int]:
        """How many workflows of ``saga`` stand in each status."""
        ...

    def get(self, saga: str, workflow_id: str) -> StatusRecord | None:
        """The latest status of one workflow, or None if it has none."""
        ...


class HistoryReader(Protocol):
    """Reads one workflow's events from its saga's event log."""

    def history(self, saga: str, workflow_id: str) -> Sequence[Event]:
        """Every event of the workflow, in log order."""
        ...


@dataclass(frozen=True, slots=True)
class LagRow:
    """How far one consumer group is behind on one partition.

    ``seconds`` is the age of the oldest record not yet processed, when the lag reader
    measures it; None means "not measured", never zero.
    """

    group: str
    topic: str
    partition: int
    committed: int | None
    end_offset: int
    records: int
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class GroupTopics:
    """A consumer group and the topics it consumes."""

    group: str
    topics: tuple[str, ...]


class LagReader(Protocol):
    """Reads the lag of consumer groups, per partition."""

    measures_seconds: bool
    """Whether rows carry ``seconds``; the page says so when they do not."""

    def lag(self, groups: Sequence[GroupTopics]) -> list[LagRow]:
        """Rows for every partition of every group's topics, in group, topic, partition order."""
        ...


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One dead-lettered record as the page shows it; ``at`` names it for an action."""

    saga: str
    partition: int
    offset: int
    workflow_id: str | None
    reason: str
    exception: str
    size: int
    state: str = "dead"
    """``dead`` while it waits for an answer; ``redriven`` or ``discarded`` once settled."""

    @property
    def at(self) -> str:
        return f"{self.partition}:{self.offset}"


class DeadLetterDesk(Protocol):
    """Reads a saga's DLQ and acts on its records."""

    can_discard: bool
    """Whether :meth:`discard` exists; the page offers only what the desk can do."""

    def letters(self, saga: str) -> list[DeadLetterRow]:
        """Every record in the saga's DLQ, oldest first per partition."""
        ...

    def redrive(self, saga: str, partition: int, offset: int) -> int:
        """Put the record at ``partition:offset`` back on the event log; how many were sent."""
        ...

    def discard(self, saga: str, partition: int, offset: int) -> None:
        """Drop the record at ``partition:offset`` for good."""
        ...


class WorkflowControl(Protocol):
    """Asks workflows to stop."""

    def cancel(self, saga: str, workflow_id: str, reason: str) -> None:
        """Compensate what the workflow completed and end it CANCELLED."""
        ...

    def terminate(self, saga: str, workflow_id: str, reason: str) -> None:
        """Stop the workflow at once, without compensation."""
        ...


@dataclass(frozen=True, slots=True)
class DashboardSources:
    """Everything the pages read from and act through, for the sagas the dashboard shows."""

    sagas: tuple[str, ...]
    groups: Mapping[str, tuple[GroupTopics, ...]]
    """The consumer groups of each saga: its processor and its queues' step workers."""
    workflows: WorkflowLister
    histories: HistoryReader
    lag: LagReader
    dead_letters: DeadLetterDesk
    control: WorkflowControl
