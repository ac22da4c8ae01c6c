"""Dashboard sources held in memory, for testing the web application without a broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sagas.dashboard.listing import count_by_status, select
from sagas.dashboard.seams import (
    DashboardSources,
    DeadLetterRow,
    GroupTopics,
    LagRow,
    WorkflowPage,
    WorkflowQuery,
)
from sagas.errors import KafkaUnavailableError
from sagas.events import Event, StatusRecord, WorkflowStatus


@dataclass
class MemoryShop:
    """Statuses, histories and dead letters in dicts; a saga in ``broken`` fails every read."""

    statuses: dict[str, dict[str, StatusRecord]] = field(default_factory=dict)
    events: dict[tuple[str, str], list[Event]] = field(default_factory=dict)
    letters: dict[str, list[DeadLetterRow]] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    done: list[tuple[str, ...]] = field(default_factory=list)
    measures_seconds: bool = False
    can_discard: bool = False

    def _check(self, saga: str) -> None:
        if saga in self.broken:
            raise KafkaUnavailableError("reading dash.events failed: broker down", saga=saga)

    def search(self, query: WorkflowQuery) -> WorkflowPage:
        self._check(query.saga)
        return select(self.statuses.get(query.saga, {}).values(), query)

    def counts(self, saga: str) -> Mapping[WorkflowStatus, int]:
        self._check(saga)
        return count_by_status(self.statuses.get(saga, {}).values())

    def get(self, saga: str, workflow_id: str) -> StatusRecord | None:
        self._check(saga)
        return self.statuses.get(saga, {}).get(workflow_id)

    def history(self, saga: str, workflow_id: str) -> Sequence[Event]:
        self._check(saga)
        return self.events.get((saga, workflow_id), [])

    def lag(self, groups: Sequence[GroupTopics]) -> list[LagRow]:
        return [LagRow(g.group, t, 0, 5, 7, 2, 1.5 if self.measures_seconds else None)
                for g in groups for t in g.topics]  # fmt: skip

    def redrive(self, saga: str, partition: int, offset: int) -> int:
        self._check(saga)
        self.done.append(("redrive", saga, f"{partition}:{offset}"))
        return 1

    def discard(self, saga: str, partition: int, offset: int) -> None:
        self.done.append(("discard", saga, f"{partition}:{offset}"))

    def dead_letters(self, saga: str) -> list[DeadLetterRow]:
        self._check(saga)
        return self.letters.get(saga, [])

    def cancel(self, saga: str, workflow_id: str, reason: str) -> None:
        self.done.append(("cancel", saga, workflow_id, reason))

    def terminate(self, saga: str, workflow_id: str, reason: str) -> None:
        self.done.append(("terminate", saga, workflow_id, reason))

    def sources(self, sagas: Sequence[str]) -> DashboardSources:
        shop = self

        class Letters:
            can_discard = shop.can_discard

            def letters(self, saga: str) -> list[DeadLetterRow]:
                return shop.dead_letters(saga)

            def redrive(self, saga: str, partition: int, offset: int) -> int:
                return shop.redrive(saga, partition, offset)

            def discard(self, saga: str, partition: int, offset: int) -> None:
                shop.discard(saga, partition, offset)

        return DashboardSources(
            sagas=tuple(sagas),
            groups={s: (GroupTopics(f"{s}.processor", (f"{s}.events",)),) for s in sagas},
            workflows=self,
            histories=self,
            lag=self,
            dead_letters=Letters(),
            control=self,
        )
