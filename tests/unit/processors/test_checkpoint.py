"""The saga processor's checkpoint: nothing reaches the local store before the commit.

A producer double that fails at each step of the commit shows the store unchanged after
the failure and the abort; one that fails nowhere shows the store written last, with the
offset of the partition's last changelog record."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from pydantic import BaseModel

from processors.checkpoint import Checkpoint
from processors.metrics import Metrics
from processors.saga_batch import PartitionBatch
from processors.saga_processor import codecs_for, routing_for
from processors.store.changelog import ChangelogWriter
from processors.store.keys import workflow_key
from processors.store.memory import MemoryPartitionStore
from sagas import Saga, StepContext, StepKind
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import Event, EventType, Origin
from topics.record_limits import RecordRefusedError


class Parcel(BaseModel):
    """What the saga ships."""

    name: str


saga = Saga("checkpointed", input=Parcel)


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
def ship(ctx: StepContext[Parcel]) -> None:
    """Ship the parcel."""


VERSIONS = compile_versions(saga)
ROUTING = routing_for(VERSIONS, "")
CODECS = codecs_for(KafkaSettings(), ROUTING)
STEPS = ("begin", "produce", "changelog", "send_offsets", "commit")


@dataclass
class _Delivered:
    """What a delivery report carries, as confluent-kafka's ``Message`` does."""

    _topic: str
    _partition: int
    _offset: int

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


@dataclass
class ProducerDouble:
    """A transactional producer that records each call and fails at ``fail_at``."""

    fail_at: str | None = None
    calls: list[str] = field(default_factory=list)
    reports: list[tuple[Any, _Delivered]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_at:
            raise KafkaException(KafkaError(KafkaError._STATE, f"{name} failed"))

    def begin_transaction(self) -> None:
        self._step("begin")

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        partition: int = -1,
        headers: Any = None,
        on_delivery: Any = None,
    ) -> None:
        self._step("changelog" if topic == ROUTING.changelog_topic else "produce")
        part = max(partition, 0)
        offset = self.offsets.get((topic, part), -1) + 1
        self.offsets[topic, part] = offset
        if on_delivery is not None:
            self.reports.append((on_delivery, _Delivered(topic, part, offset)))

    def poll(self, timeout: float = 0) -> int:
        reports, self.reports = self.reports, []
        for callback, message in reports:
            callback(None, message)
        return len(reports)

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: object, timeout: float = 0
    ) -> None:
        self._step("send_offsets")

    def commit_transaction(self, timeout: float = 0) -> None:
        self._step("commit")
        self.poll()  # a commit waits for every delivery

    def abort_transaction(self, timeout: float = 0) -> None:
        self.calls.append("abort")
        self.reports.clear()


def _batch(store: MemoryPartitionStore) -> PartitionBatch:
    batch = PartitionBatch(
        routing=ROUTING, codecs=CODECS, versions=VERSIONS, store=store, partition=0,
        partitions=1, now_ms=1_000, metrics=Metrics(),
    )  # fmt: skip
    start = Event(
        event_id=uuid.uuid4().hex, workflow_id="wf", saga="checkpointed", version=0,
        type=EventType.START_REQUESTED, origin=Origin.CLIENT, time_ms=0,
        payload=Parcel(name="p").model_dump_json(),
    )  # fmt: skip
    batch.apply_record(0, b"wf", CODECS.event.encode(start))
    batch.finish()
    return batch


def _checkpoint(producer: ProducerDouble) -> Checkpoint:
    changelog = ChangelogWriter(cast("Producer", producer), ROUTING.changelog_topic)
    return Checkpoint(producer, changelog, lambda error, message: None)


OFFSETS = [TopicPartition(ROUTING.events_topic, 0, 1)]


def test_a_commit_runs_its_steps_in_order_and_writes_the_store_last() -> None:
    store = MemoryPartitionStore(0)
    producer = ProducerDouble()
    batch = _batch(store)
    staged = len(batch.txn.changes())
    _checkpoint(producer).commit({0: batch}, OFFSETS, object())
    first = {name: producer.calls.index(name) for name in STEPS}
    assert sorted(first, key=first.__getitem__) == list(STEPS)
    assert producer.calls.count("changelog") == staged
    assert store.get(workflow_key("wf")) is not None
    assert store.changelog_offset() == staged - 1


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_leaves_the_store_untouched(step: str) -> None:
    store = MemoryPartitionStore(0)
    producer = ProducerDouble(fail_at=step)
    batch = _batch(store)
    checkpoint = _checkpoint(producer)
    with pytest.raises((KafkaException, RecordRefusedError)):
        checkpoint.commit({0: batch}, OFFSETS, object())
    assert list(store.iter_range(b"")) == []
    assert store.changelog_offset() is None
    checkpoint.abort({0: batch})
    assert producer.calls[-1] == "abort"
    assert batch.txn.done
    assert list(store.iter_range(b"")) == []
    later = set(STEPS[STEPS.index(step) + 1 :])
    assert not later & set(producer.calls), "the commit went on past the failed step"


class _HungError(Exception):
    """What a bounded offsets call raises when librdkafka never returns."""


def test_step_four_goes_through_the_given_offsets_sender() -> None:
    store = MemoryPartitionStore(0)
    producer = ProducerDouble()
    changelog = ChangelogWriter(cast("Producer", producer), ROUTING.changelog_topic)
    sent: list[tuple[list[TopicPartition], object]] = []
    metadata = object()

    def hang(positions: list[TopicPartition], group_metadata: object) -> None:
        sent.append((positions, group_metadata))
        raise _HungError("offsets call hung")

    checkpoint = Checkpoint(producer, changelog, lambda e, m: None, send_offsets=hang)
    with pytest.raises(_HungError):
        checkpoint.commit({0: _batch(store)}, OFFSETS, metadata)
    assert sent == [(OFFSETS, metadata)]
    assert "send_offsets" not in producer.calls  # the producer's own call was not made
    assert "commit" not in producer.calls
    assert list(store.iter_range(b"")) == []
