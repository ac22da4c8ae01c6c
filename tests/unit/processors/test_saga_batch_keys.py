"""The saga processor's batch applies a record only where it belongs: keyed by its
workflow id, on the partition murmur2 of that id names; anything else goes to the DLQ
with its reason and parks nothing."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest
from pydantic import BaseModel

from processors.metrics import Metrics
from processors.saga_batch import PartitionBatch, parked_ids
from processors.saga_processor import codecs_for, routing_for
from processors.store.keys import workflow_key
from processors.store.memory import MemoryPartitionStore
from sagas import Saga, StepContext, StepKind
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import Event, EventType, Origin
from topics.dead_letter_headers import HEADER_PARTITION, HEADER_REASON, DlqReason
from topics.partitioning import partition_for

PARTITIONS = 6


class Parcel(BaseModel):
    """What the saga delivers."""

    name: str


saga = Saga("keyed", input=Parcel, version=1)


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=30))
def deliver(ctx: StepContext[Parcel]) -> None:
    """Deliver the parcel."""


VERSIONS = compile_versions(saga)
ROUTING = routing_for(VERSIONS, "")
CODECS = codecs_for(KafkaSettings(), ROUTING)


def _start(workflow_id: str) -> bytes:
    event = Event(
        event_id=uuid.uuid4().hex, workflow_id=workflow_id, saga="keyed", version=0,
        type=EventType.START_REQUESTED, origin=Origin.CLIENT, time_ms=0,
        payload=Parcel(name=workflow_id).model_dump_json(),
    )  # fmt: skip
    return CODECS.event.encode(event)


def _apply(store: MemoryPartitionStore, key: bytes | None, value: bytes) -> PartitionBatch:
    """One batch of one record at offset 7 on ``store``'s partition, committed."""
    batch = PartitionBatch(
        routing=ROUTING, codecs=CODECS, versions=VERSIONS, store=store,
        partition=store.partition, partitions=PARTITIONS, now_ms=1, metrics=Metrics(),
    )  # fmt: skip
    batch.apply_record(7, key, value)
    batch.finish()
    batch.txn.commit(None)
    return batch


def _reasons(batch: PartitionBatch) -> list[bytes]:
    return [
        dict(record.headers)[HEADER_REASON]
        for record in batch.outgoing
        if record.topic == ROUTING.dlq_topic and record.headers is not None
    ]


def _home(workflow_id: str) -> int:
    return partition_for(workflow_id.encode(), PARTITIONS)


def _has_state(store: MemoryPartitionStore, workflow_id: str) -> bool:
    return store.get(workflow_key(workflow_id)) is not None


WID = "parcel-1"
ELSEWHERE = (_home(WID) + 1) % PARTITIONS


@pytest.mark.parametrize(
    ("key", "partition", "reason"),
    [
        (None, ELSEWHERE, DlqReason.MISSING_KEY),
        (None, _home(WID), DlqReason.MISSING_KEY),
        (b"parcel-2", _home(WID), DlqReason.KEY_MISMATCH),
        (WID.encode(), ELSEWHERE, DlqReason.WRONG_PARTITION),
    ],
    ids=["keyless-elsewhere", "keyless-at-home", "other-key", "wrong-partition"],
)
def test_a_misplaced_start_goes_to_the_dlq_unapplied_and_parks_nothing(
    key: bytes | None, partition: int, reason: DlqReason
) -> None:
    store = MemoryPartitionStore(partition)
    batch = _apply(store, key, _start(WID))
    assert _reasons(batch) == [reason.value.encode()]
    assert [r.topic for r in batch.outgoing] == [ROUTING.dlq_topic]  # no command, no status
    assert not _has_state(store, WID)
    assert parked_ids(store) == set()


def test_the_dlq_record_says_where_it_was_and_keeps_the_bytes() -> None:
    value = _start(WID)
    (record,) = _apply(MemoryPartitionStore(ELSEWHERE), WID.encode(), value).outgoing
    headers = dict(record.headers or ())
    assert headers[HEADER_REASON] == b"wrong_partition"
    assert headers[HEADER_PARTITION] == str(ELSEWHERE).encode()
    assert b"belongs on partition" in headers["sagas.dlq.exception"]
    assert (record.key, record.value) == (WID.encode(), value)


def test_a_keyless_answer_on_the_workflows_own_partition_leaves_it_running() -> None:
    store = MemoryPartitionStore(_home(WID))
    started = _apply(store, WID.encode(), _start(WID))
    assert any(r.topic == ROUTING.command_topic("keyed") for r in started.outgoing)
    again = _apply(store, None, _start(WID))
    assert _reasons(again) == [DlqReason.MISSING_KEY.value.encode()]
    assert parked_ids(store) == set()
    assert _has_state(store, WID)


def test_a_start_keyed_and_placed_by_murmur2_is_applied_on_every_partition() -> None:
    for n in range(3 * PARTITIONS):
        wid = f"parcel-{n}"
        store = MemoryPartitionStore(_home(wid))
        batch = _apply(store, wid.encode(), _start(wid))
        assert _reasons(batch) == []
        assert _has_state(store, wid)


def test_a_redrive_of_a_misplaced_start_applies_it_at_the_workflows_home() -> None:
    value = _start(WID)
    (letter,) = _apply(MemoryPartitionStore(ELSEWHERE), None, value).outgoing
    assert letter.value == value
    redrive = Event(
        event_id=uuid.uuid4().hex, workflow_id=WID, saga="keyed", version=0,
        type=EventType.REDRIVE_REQUESTED, origin=Origin.CLIENT, time_ms=0,
        payload=json.dumps({"value": base64.b64encode(value).decode()}),
    )  # fmt: skip
    home = MemoryPartitionStore(_home(WID))
    batch = _apply(home, WID.encode(), CODECS.event.encode(redrive))
    assert _reasons(batch) == []
    assert _has_state(home, WID)
