"""The dashboard's sources served over Kafka by the client and its readers.

This is the one module of the dashboard that imports the client, its readers and the
lag reader: when they move, only these imports change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sagas.client import SagaClient
from sagas.client.dead_letters import DeadLetter, discard, read_dead_letters, redrive
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.dashboard.listing import count_by_status, select
from sagas.dashboard.seams import (
    DashboardSources,
    DeadLetterRow,
    GroupTopics,
    LagRow,
    WorkflowPage,
    WorkflowQuery,
)
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError
from sagas.events import Event, StatusRecord, WorkflowStatus
from topics.lag import consumer_lag
from topics.naming import TopicNames

_READ_TIMEOUT_S = 15.0
"""How long a page waits on Kafka before it shows the error instead."""


class StatusTopicLister:
    """Lists workflows from the client's live view of each saga's status topic.

    Every search reads the topic to its end first, then filters in memory: fine for the
    workflows a status topic holds today, and replaced by a processor-served search.
    """

    def __init__(self, client: SagaClient) -> None:
        self._client = client

    def search(self, query: WorkflowQuery) -> WorkflowPage:
        return select(self._client.statuses(query.saga).values(), query)

    def counts(self, saga: str) -> Mapping[WorkflowStatus, int]:
        return count_by_status(self._client.statuses(saga).values())

    def get(self, saga: str, workflow_id: str) -> StatusRecord | None:
        return self._client.statuses(saga).get(workflow_id)


class EventLogHistories:
    """Reads a workflow's history from its partition of the saga's event log."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka

    def history(self, saga: str, workflow_id: str) -> Sequence[Event]:
        return read_history(self._kafka, saga, workflow_id, timeout=_READ_TIMEOUT_S)


class RecordLag:
    """Lag in records, from committed and end offsets; it does not measure seconds."""

    measures_seconds = False

    def __init__(self, kafka: KafkaSettings) -> None:
        self._config = kafka.client_config()

    def lag(self, groups: Sequence[GroupTopics]) -> list[LagRow]:
        rows = []
        for group in groups:
            for p in consumer_lag(self._config, group.group, group.topics, timeout_s=10.0):
                rows.append(
                    LagRow(group.group, p.topic, p.partition, p.committed, p.end_offset, p.lag)
                )
        return rows


class KafkaDeadLetters:
    """Reads a saga's DLQ topic, and redrives or discards its records."""

    can_discard = True

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka

    def letters(self, saga: str) -> list[DeadLetterRow]:
        return [
            DeadLetterRow(
                saga=saga,
                partition=letter.partition,
                offset=letter.offset,
                workflow_id=letter.workflow_id,
                reason=letter.reason,
                exception=letter.exception,
                size=len(letter.value or b""),
                state=letter.state.value,
            )
            for letter in read_dead_letters(self._kafka, saga, timeout=_READ_TIMEOUT_S)
        ]

    def redrive(self, saga: str, partition: int, offset: int) -> int:
        return redrive(self._kafka, saga, self._chosen(saga, partition, offset))

    def discard(self, saga: str, partition: int, offset: int) -> None:
        if discard(self._kafka, saga, self._chosen(saga, partition, offset)) == 0:
            raise SagaError(
                f"the record at {partition}:{offset} was already redriven or discarded", saga=saga
            )

    def _chosen(self, saga: str, partition: int, offset: int) -> list[DeadLetter]:
        chosen = [
            letter
            for letter in read_dead_letters(self._kafka, saga, timeout=_READ_TIMEOUT_S)
            if (letter.partition, letter.offset) == (partition, offset)
        ]
        if not chosen:
            raise SagaError(f"no dead-lettered record at {partition}:{offset}", saga=saga)
        return chosen


class ClientControl:
    """Cancels and terminates workflows through the client."""

    def __init__(self, client: SagaClient) -> None:
        self._client = client

    def cancel(self, saga: str, workflow_id: str, reason: str) -> None:
        self._client.cancel(saga, workflow_id, reason)

    def terminate(self, saga: str, workflow_id: str, reason: str) -> None:
        self._client.terminate(saga, workflow_id, reason)


def saga_groups(versions: SagaVersions, prefix: str) -> tuple[GroupTopics, ...]:
    """The saga processor's group on the event log, and each queue's step-worker group."""
    names = TopicNames(versions.name, prefix)
    workers = tuple(
        GroupTopics(names.worker_group(queue), (names.commands(queue),))
        for queue in sorted(versions.queues)
    )
    return (GroupTopics(names.processor_group, (names.events,)), *workers)


def kafka_sources(
    kafka: KafkaSettings, sagas: Sequence[SagaVersions], client: SagaClient
) -> DashboardSources:
    """Every source of the dashboard, read over Kafka with ``client`` and the readers."""
    return DashboardSources(
        sagas=tuple(v.name for v in sagas),
        groups={v.name: saga_groups(v, kafka.topic_prefix) for v in sagas},
        workflows=StatusTopicLister(client),
        histories=EventLogHistories(kafka),
        lag=RecordLag(kafka),
        dead_letters=KafkaDeadLetters(kafka),
        control=ClientControl(client),
    )


def open_client(kafka: KafkaSettings) -> SagaClient:
    """The client the dashboard keeps for its lifetime (its status views stay live)."""
    return SagaClient(kafka)
