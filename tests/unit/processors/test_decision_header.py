"""The processor marks its own decisions, and only them, so it can skip them unread when
it reads its event log back; commands and events to other logs carry no such mark."""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import BaseModel

from processors.metrics import Metrics
from processors.saga_batch import DECISION_HEADER, PartitionBatch
from processors.saga_processor import codecs_for, routing_for
from processors.store.memory import MemoryPartitionStore
from sagas import Saga, StepContext, StepKind
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import INPUT_TYPES, Event, EventType, Origin
from topics.partitioning import partition_for


class Order(BaseModel):
    """What the saga handles."""

    order_id: str


saga = Saga("marked", input=Order, version=1)


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
def reserve(ctx: StepContext[Order]) -> None:
    """Reserve the goods."""


VERSIONS = compile_versions(saga)
ROUTING = routing_for(VERSIONS, "")
CODECS = codecs_for(KafkaSettings(), ROUTING)


def _start_batch(workflow_id: str) -> PartitionBatch:
    event = Event(
        event_id=uuid.uuid4().hex, workflow_id=workflow_id, saga="marked", version=0,
        type=EventType.START_REQUESTED, origin=Origin.CLIENT, time_ms=0,
        payload=Order(order_id=workflow_id).model_dump_json(),
    )  # fmt: skip
    key = workflow_id.encode()
    partition = partition_for(key, 1)
    batch = PartitionBatch(
        routing=ROUTING, codecs=CODECS, versions=VERSIONS, store=MemoryPartitionStore(partition),
        partition=partition, partitions=1, now_ms=1, metrics=Metrics(),
    )  # fmt: skip
    batch.apply_record(0, key, CODECS.event.encode(event))
    batch.finish()
    return batch


def test_every_decision_carries_the_header_and_is_no_input() -> None:
    batch = _start_batch("w-1")
    decisions = [r for r in batch.outgoing if r.topic == ROUTING.events_topic]
    assert decisions, "starting a workflow appends decisions to its event log"
    for record in decisions:
        assert record.headers == (DECISION_HEADER,)
        assert CODECS.event.decode(record.value or b"").type not in INPUT_TYPES


def test_commands_and_status_carry_no_decision_header() -> None:
    batch = _start_batch("w-2")
    others = [r for r in batch.outgoing if r.topic != ROUTING.events_topic]
    assert {r.topic for r in others} >= {ROUTING.command_topic("marked"), ROUTING.status_topic}
    assert all(r.headers is None for r in others)
