"""Record size limits: the arithmetic, and a batch that fails only the workflow too large."""

from __future__ import annotations

import json
import time
import uuid

from pydantic import BaseModel

from processors.dlq import dlq_record
from processors.metrics import Metrics
from processors.saga_batch import PartitionBatch
from processors.saga_processor import _workflow_of, codecs_for, routing_for
from processors.store.keys import parked_key, workflow_key
from processors.store.memory import MemoryStore
from sagas import Saga, StepContext
from sagas.config import KafkaSettings
from sagas.engine.fold import RESULT_TOO_LARGE
from sagas.engine.state import Phase, WorkflowState
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import ErrorInfo, Event, EventType, Origin, WorkflowStatus
from topics.dead_letter_headers import HEADER_REASON, HEADER_VALUE_OMITTED, DlqReason
from topics.record_limits import RECORD_OVERHEAD_BYTES, RecordLimits, record_size

LIMIT = 20_000
"""A small producer limit, so the tests need no megabyte payloads."""


class Order(BaseModel):
    data: str


def _versions() -> SagaVersions:
    saga = Saga("sized", input=Order)

    @saga.step()
    def reserve(ctx: StepContext[Order]) -> str:
        return "r"

    @reserve.compensation()
    def release(ctx: StepContext[Order]) -> None:
        return None

    @saga.step()
    def fetch(ctx: StepContext[Order]) -> str:
        return "f"

    @fetch.compensation()
    def forget(ctx: StepContext[Order]) -> None:
        return None

    return compile_versions(saga)


def test_a_topic_limit_is_the_smaller_of_topic_and_producer_less_the_overhead() -> None:
    limits = RecordLimits(producer_max_bytes=1_000_000, topic_max_bytes={"a": 500_000, "b": 2**30})
    assert limits.limit("a") == 500_000 - RECORD_OVERHEAD_BYTES
    assert limits.limit("b") == 1_000_000 - RECORD_OVERHEAD_BYTES


def test_an_unknown_topic_is_looked_up_once_then_cached() -> None:
    asked: list[str] = []

    def lookup(topic: str) -> int | None:
        asked.append(topic)
        return 10_000 if topic == "child.events" else None

    limits = RecordLimits(producer_max_bytes=50_000, default_topic_max_bytes=30_000, lookup=lookup)
    assert limits.limit("child.events") == 10_000 - RECORD_OVERHEAD_BYTES
    assert limits.limit("child.events") == 10_000 - RECORD_OVERHEAD_BYTES
    assert limits.limit("gone") == 30_000 - RECORD_OVERHEAD_BYTES
    assert asked == ["child.events", "gone"]


def test_the_size_counts_key_value_and_headers() -> None:
    headers = (("h1", b"abc"), ("h22", b""))
    assert record_size(b"key", b"value", headers) == 3 + 5 + 2 + 3 + 3
    limits = RecordLimits(producer_max_bytes=RECORD_OVERHEAD_BYTES + 10)
    assert limits.excess("t", b"12345", b"12345") is None
    assert limits.excess("t", b"12345", b"123456") == (11, 10)
    assert limits.excess("t", b"1", b"1", (("x", b"123456789"),)) == (12, 10)


def test_a_dlq_record_too_large_for_the_dlq_keeps_its_reason_and_drops_the_value() -> None:
    def record(max_bytes: int | None) -> tuple[bytes | None, dict[str, bytes]]:
        out = dlq_record("d", key=b"w", value=b"x" * 5000, reason=DlqReason.RECORD_TOO_LARGE,
                         exception="too big", source_topic="e", source_partition=0,
                         source_offset=7, attempts=1, now_ms=1, workflow_id="w",
                         max_bytes=max_bytes)  # fmt: skip
        return out.value, dict(out.headers or ())

    value, headers = record(4000)
    assert value is None
    assert headers[HEADER_VALUE_OMITTED] == b"5000"
    assert headers[HEADER_REASON] == b"record_too_large"
    value, headers = record(None)
    assert value == b"x" * 5000
    assert HEADER_VALUE_OMITTED not in headers


class _Run:
    """Drives the processor's per-partition core on the in-memory store, batch by batch."""

    def __init__(self, versions: SagaVersions, limits: RecordLimits | None) -> None:
        kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
        self.versions = versions
        self.routing = routing_for(versions, "")
        self.codecs = codecs_for(kafka, self.routing)
        self.store = MemoryStore()
        self.limits = limits
        self.offset = 0
        self.log: dict[str, list[Event]] = {}
        self.dlq: list[tuple[bytes | None, dict[str, bytes]]] = []

    def batch(self, events: list[Event]) -> PartitionBatch:
        batch = PartitionBatch(routing=self.routing, codecs=self.codecs, versions=self.versions,
                               store=self.store.partition(0), partition=0, partitions=1,
                               now_ms=time.time_ns() // 1_000_000, metrics=Metrics(),
                               limits=self.limits)  # fmt: skip
        for event in events:
            self.log.setdefault(event.workflow_id, []).append(event)
            batch.apply_record(self.offset, event.workflow_id.encode(),
                               self.codecs.event.encode(event))  # fmt: skip
            self.offset += 1
        batch.finish()
        for record in batch.outgoing:
            if record.topic == self.routing.events_topic:
                decision = self.codecs.event.decode(record.value or b"")
                self.log.setdefault(decision.workflow_id, []).append(decision)
            elif record.topic == self.routing.dlq_topic:
                self.dlq.append((record.value, dict(record.headers or ())))
            if self.limits is not None:
                excess = self.limits.excess(record.topic, record.key, record.value, record.headers)
                assert excess is None, f"a record of {record.topic} over the limit: {excess}"
        for key, value in batch.txn.changes().items():
            if self.limits is not None and value is not None:
                assert self.limits.excess(self.routing.changelog_topic, key, value) is None
        batch.txn.commit(self.offset)
        return batch

    def state(self, wid: str) -> WorkflowState | None:
        data = self.store.partition(0).get(workflow_key(wid))
        return WorkflowState.from_bytes(data) if data is not None else None


def _event(type_: EventType, wid: str, **fields: object) -> Event:
    return Event(event_id=uuid.uuid4().hex, workflow_id=wid, saga="sized", version=1, type=type_,
                 origin=Origin.WORKER if type_ is not EventType.START_REQUESTED else Origin.CLIENT,
                 time_ms=time.time_ns() // 1_000_000, **fields)  # type: ignore[arg-type]  # fmt: skip


def _start(wid: str, size: int) -> Event:
    return _event(EventType.START_REQUESTED, wid, payload=json.dumps({"data": "x" * size}))


def _answer(wid: str, step: str, size: int) -> Event:
    return _event(EventType.STEP_SUCCEEDED, wid, step=step, attempt=1,
                  payload=json.dumps("y" * size))  # fmt: skip


def test_a_result_too_large_fails_its_step_for_good_and_compensation_runs() -> None:
    run = _Run(_versions(), RecordLimits(producer_max_bytes=LIMIT))
    run.batch([_start("big", 3_000), _start("small", 100)])
    run.batch([_answer("big", "reserve", 100), _answer("small", "reserve", 100)])
    run.batch([_answer("big", "fetch", 15_000), _answer("small", "fetch", 100)])

    big = run.state("big")
    small = run.state("small")
    assert small is not None
    assert small.status is WorkflowStatus.COMPLETED
    assert big is not None
    assert big.status is WorkflowStatus.COMPENSATING
    fetch = big.steps["fetch"]
    assert fetch.phase is Phase.FAILED
    assert fetch.result is None
    assert fetch.error is not None
    assert fetch.error.type == RESULT_TOO_LARGE
    assert fetch.error.non_retryable
    assert f"over the limit of {LIMIT - RECORD_OVERHEAD_BYTES} bytes" in fetch.error.message
    refused = [e for e in run.log["big"] if e.type is EventType.STEP_FAILED]
    assert len(refused) == 1
    assert refused[0].origin is Origin.PROCESSOR
    assert "over the limit of" in (refused[0].error.message if refused[0].error else "")
    scheduled = [e.step for e in run.log["big"] if e.type is EventType.COMPENSATION_SCHEDULED]
    assert scheduled == ["reserve"]
    assert run.dlq == []
    # Replay-safe: folding the log (inputs and decisions) gives the stored state.
    assert run.versions.plans[1].fold(run.log["big"]) == big


def test_a_start_too_large_for_the_state_is_dead_lettered_and_parked_others_go_on() -> None:
    run = _Run(_versions(), RecordLimits(producer_max_bytes=LIMIT))
    # Let in by an event topic with a larger limit; the started decision and the state
    # would carry the input again, over the limit of the topics they go to.
    batch = run.batch([_start("huge", LIMIT + 1_000), _start("fine", 100)])
    assert run.state("huge") is None
    assert run.state("fine") is not None
    assert run.store.partition(0).get(parked_key("huge")) is not None
    assert batch.newly_parked == ["huge"]
    assert len(run.dlq) == 1
    value, headers = run.dlq[0]
    assert headers[HEADER_REASON] == DlqReason.RECORD_TOO_LARGE.value.encode()
    assert b"over the limit of" in headers["sagas.dlq.exception"]
    assert value is None  # too large for the DLQ too: its size is kept instead
    assert int(headers[HEADER_VALUE_OMITTED]) > LIMIT
    assert not any(e.type is EventType.STARTED for e in run.log["huge"])


def test_without_limits_the_batch_takes_what_it_is_given() -> None:
    run = _Run(_versions(), None)
    run.batch([_start("big", LIMIT * 2)])
    assert run.state("big") is not None
    assert run.dlq == []


def test_any_other_input_too_large_is_dead_lettered_and_parks_its_workflow_unchanged() -> None:
    run = _Run(_versions(), RecordLimits(producer_max_bytes=LIMIT))
    run.batch([_start("w", 100), _start("other", 100)])
    before = run.state("w")
    failed = _event(EventType.STEP_FAILED, "w", step="reserve", attempt=1,
                    error=ErrorInfo("Boom", "z" * LIMIT))  # fmt: skip
    run.batch([failed, _answer("other", "reserve", 100)])
    assert run.state("w") == before
    assert run.store.partition(0).get(parked_key("w")) is not None
    assert [h[HEADER_REASON] for _, h in run.dlq] == [b"record_too_large"]
    other = run.state("other")
    assert other is not None
    assert other.steps["reserve"].phase is Phase.SUCCEEDED


def test_a_refused_record_is_traced_to_its_workflow_by_its_key() -> None:
    changelog = "sized.state-changelog"
    assert _workflow_of("queue.sized.commands", b"w-1", changelog) == "w-1"
    assert _workflow_of(changelog, b"ww-1", changelog) == "w-1"
    assert _workflow_of(changelog, b"t\x00\x01timer", changelog) is None
    assert _workflow_of("sized.events", None, changelog) is None
    assert _workflow_of("sized.events", b"\xff\xfe", changelog) is None
