"""Folding a log gives the store the runtime's own batch core built while writing that log.

The processor's per-partition core (:class:`PartitionBatch`) runs on the memory store
over a simulated partition: each batch's decisions are appended after its inputs, as
the processor appends them, and participants answer the commands with inputs of their
own. Several inputs of one workflow share batches, so the log shows inputs before the
decisions of the ones before them. The fold of that log must rebuild the same keys and
bytes: states, timer index, parked markers and held records.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import BaseModel

from processors.log_fold import PartitionFold, ReplayError
from processors.log_reading import DeadLettered, DeadLetterIndex
from processors.metrics import Metrics
from processors.saga_batch import Codecs, PartitionBatch, Routing
from processors.store.keys import (
    HELD_PREFIX,
    PARKED_PREFIX,
    RUN_PREFIX,
    START_INDEX,
    TIMER_PREFIX,
    parked_key,
    parse_timer_key,
)
from processors.store.memory import MemoryPartitionStore
from processors.visibility_staging import RETENTION_TIMER_ID, VisibilityStaging
from sagas import NonRetryableError, Retry, Saga, StepContext, StepKind, WorkflowView
from sagas.engine.execution import answer_event
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import Command, ErrorInfo, Event, EventType, Origin
from sagas.log_order import ignored_positions, processing_order
from schemas import CommandCodec, EventCodec, StatusCodec

EVENTS = "fold.events"


class Order(BaseModel):
    """Which attempts of ``charge`` fail, by number."""

    failing_attempts: list[int] = []
    refuse: bool = False


def _saga(version: int = 1) -> Saga[Order]:
    saga = Saga("fold", input=Order, version=version)

    @saga.step(timeout=timedelta(seconds=30))
    async def reserve(ctx: StepContext[Order]) -> str:
        return "r"

    @reserve.compensation
    async def release(ctx: StepContext[Order]) -> None:
        return None

    @saga.step(
        retry=Retry(max_attempts=3, initial_interval=timedelta(milliseconds=5)),
        timeout=timedelta(seconds=30),
        kind=StepKind.PIVOT,
    )
    async def charge(ctx: StepContext[Order]) -> str:
        raise NonRetryableError("never run here")

    return saga


class Partition:
    """One simulated partition of ``fold.events`` and the processor working on it."""

    def __init__(self, versions: SagaVersions, visibility: VisibilityStaging | None = None) -> None:
        self.versions = versions
        self.visibility = visibility
        self.codec = EventCodec()
        self.commands = CommandCodec()
        self.codecs = Codecs(
            event=self.codec,
            status=StatusCodec(),
            command_for=lambda _topic: self.commands,
            event_for=lambda _topic: self.codec,
        )
        self.routing = Routing(
            saga="fold", events_topic=EVENTS, changelog_topic="fold.changelog",
            status_topic="fold.status", dlq_topic="fold.dlq",
            command_topic=lambda queue: f"fold.{queue}", events_topic_of=lambda s: f"{s}.events",
        )  # fmt: skip
        self.store = MemoryPartitionStore(0)
        self.log: list[tuple[bytes, bytes]] = []
        self.read = 0
        self.now = 1_000_000
        self.orders: dict[str, Order] = {}
        self.dead_letters: dict[tuple[int, int], DeadLettered] = {}

    def append(self, event: Event) -> None:
        self.log.append((event.workflow_id.encode(), self.codec.encode(event)))

    def start(self, wid: str, order: Order) -> None:
        self.orders[wid] = order
        self.append(_input(wid, EventType.START_REQUESTED, f"{wid}/start", order.model_dump_json()))

    def batch(self, max_records: int) -> None:
        """Process up to ``max_records`` unread records and fire the due timers."""
        self.now += 10
        batch = PartitionBatch(
            routing=self.routing, codecs=self.codecs, versions=self.versions, store=self.store,
            partition=0, partitions=1, now_ms=self.now, metrics=Metrics(),
            visibility=self.visibility,
        )  # fmt: skip
        end = min(len(self.log), self.read + max_records)
        for offset in range(self.read, end):
            key, value = self.log[offset]
            if self.codec.decode(value).origin is Origin.PROCESSOR:
                continue
            batch.apply_record(offset, key, value)
        self.read = end
        batch.fire_due_timers(100)
        batch.finish()
        batch.txn.commit(None)
        answers = []
        for record in batch.outgoing:
            if record.topic == EVENTS:
                self.log.append((record.key or b"", record.value or b""))
            elif record.topic == "fold.dlq":
                dlq_offset = dict(record.headers or [])["sagas.dlq.source.offset"]
                offset = int(dlq_offset.decode() if isinstance(dlq_offset, bytes) else dlq_offset)
                wid = (record.key or b"").decode()
                self.dead_letters[0, offset] = DeadLettered("unapplicable", self.now, wid)
            elif record.topic.startswith("fold.") and record.topic != "fold.status":
                answers.append(self._answer(self.commands.decode(record.value or b"")))
        for answer in answers:
            self.append(answer)

    def _answer(self, command: Command) -> Event:
        order = self.orders[command.workflow_id]
        if command.step == "charge" and command.attempt in order.failing_attempts:
            return answer_event(command, time_ms=self.now, error=ErrorInfo("Flaky", "down"))
        return answer_event(command, time_ms=self.now, payload='"ok"')

    def fold(self, versions: SagaVersions | None = None) -> dict[bytes, bytes]:
        # Inputs not read yet wait for the processor, as past a group's committed offset.
        letters = DeadLetterIndex(self.dead_letters, {})
        fold = PartitionFold(versions or self.versions, self.codec, 0, letters, self.read,
                             visibility=self.visibility, now_ms=self.now)  # fmt: skip
        for offset, (key, value) in enumerate(self.log):
            fold.add(offset, key, value)
        return fold.finish().changes

    def stored(self) -> dict[bytes, bytes]:
        return dict(self.store.iter_range(b""))


def _input(wid: str, kind: EventType, event_id: str, payload: str | None = None,
           name: str | None = None) -> Event:  # fmt: skip
    return Event(
        event_id=event_id, workflow_id=wid, saga="fold", version=0, type=kind,
        origin=Origin.CLIENT, time_ms=1, payload=payload, name=name,
    )  # fmt: skip


def _run_to_the_end(part: Partition, workflows: int) -> None:
    for i in range(workflows):
        part.start(f"w{i}", Order(failing_attempts=list(range(1, 1 + i % 3))))
    for step in range(40):
        part.batch(max_records=5 if step % 2 else 50)


def test_the_fold_rebuilds_the_search_index_and_retention_timers_the_batches_staged() -> None:
    versions = compile_versions(_saga())
    part = Partition(versions, VisibilityStaging(versions, timedelta(hours=1)))
    _run_to_the_end(part, 8)
    stored = part.stored()
    assert any(k.startswith(START_INDEX) for k in stored), "the batches indexed nothing"
    retention = [k for k in stored if k.startswith(TIMER_PREFIX)
                 and parse_timer_key(k).timer_id == RETENTION_TIMER_ID]  # fmt: skip
    assert len(retention) == 8, "every ended workflow waits for its removal"
    folded = part.fold()
    assert folded == stored
    # In key order, as a replay writes them to RocksDB fastest.
    assert list(folded) == sorted(stored)


def test_the_fold_leaves_out_what_retention_removed_as_the_processor_did() -> None:
    versions = compile_versions(_saga())
    part = Partition(versions, VisibilityStaging(versions, timedelta(seconds=2)))
    _run_to_the_end(part, 6)
    part.now += 3_000  # past every ended workflow's retention: the next batch removes them
    part.batch(max_records=50)
    stored = part.stored()
    assert [k for k in stored if not k.startswith(b"t")] == [], "retention left keys behind"
    assert part.fold() == stored == {}


def test_without_visibility_settings_the_fold_keeps_every_workflow() -> None:
    versions = compile_versions(_saga())
    part = Partition(versions, VisibilityStaging(versions, timedelta(seconds=2)))
    _run_to_the_end(part, 3)
    part.now += 3_000
    part.batch(max_records=50)
    part.visibility = None  # a fold that does not know the retention
    assert len([k for k in part.fold() if k.startswith(b"w")]) == 3


class Loop(BaseModel):
    """Which run of the looping saga this is."""

    run: int = 1


def _looping_saga() -> Saga[Loop]:
    """Three runs, each a step and a short pause, joined by continue-as-new."""
    saga = Saga("fold", input=Loop)
    quick = Retry(max_attempts=2)

    @saga.step(kind=StepKind.RETRIABLE, retry=quick, timeout=timedelta(seconds=30))
    async def tick(ctx: StepContext[Loop]) -> str:
        return "t"

    saga.sleep("pause", timedelta(milliseconds=30))

    @saga.branch(targets=("again", "stop"))
    def more(view: WorkflowView[Loop]) -> str:
        return "stop" if view.input.run >= 3 else "again"

    saga.continue_as_new("again", input=lambda view: Loop(run=view.input.run + 1))

    @saga.step(kind=StepKind.RETRIABLE, retry=quick, timeout=timedelta(seconds=30))
    async def stop(ctx: StepContext[Loop]) -> None:
        return None

    return saga


def _loop_to_the_end(part: Partition, workflows: int) -> None:
    for i in range(workflows):
        part.orders[f"w{i}"] = Order()
        part.append(
            _input(f"w{i}", EventType.START_REQUESTED, f"w{i}/start", Loop().model_dump_json())
        )
    for step in range(40):
        part.batch(max_records=5 if step % 2 else 50)


def test_the_fold_keeps_the_runs_continued_as_new_from_as_the_batches_kept_them() -> None:
    versions = compile_versions(_looping_saga())
    part = Partition(versions, VisibilityStaging(versions, timedelta(hours=1)))
    _loop_to_the_end(part, 3)
    stored = part.stored()
    runs = [k for k in stored if k.startswith(RUN_PREFIX)]
    assert len(runs) == 6, "each workflow keeps its two earlier runs"
    removals = [k for k in stored if k.startswith(TIMER_PREFIX)
                and parse_timer_key(k).timer_id.startswith("x:run:")]  # fmt: skip
    assert len(removals) == 6
    # Listed once each, by the current run: the earlier runs' index entries went.
    assert len([k for k in stored if k.startswith(START_INDEX)]) == 3
    assert part.fold() == stored


def test_the_fold_leaves_out_the_runs_retention_removed() -> None:
    versions = compile_versions(_looping_saga())
    part = Partition(versions, VisibilityStaging(versions, timedelta(seconds=1)))
    _loop_to_the_end(part, 2)
    dues = sorted(parse_timer_key(k).due_ms for k in part.stored() if k.startswith(TIMER_PREFIX))
    part.now = dues[0]  # the next batch (10 ms on) removes the earliest runs, not the rest
    part.batch(max_records=50)
    stored = part.stored()
    assert 0 < len([k for k in stored if k.startswith(RUN_PREFIX)]) < 4
    assert part.fold() == stored
    part.now = dues[-1]
    part.batch(max_records=50)
    assert part.fold() == part.stored() == {}


def test_the_fold_rebuilds_the_store_the_batches_built_with_shared_batches() -> None:
    part = Partition(compile_versions(_saga()))
    for i in range(12):
        part.start(f"w{i}", Order(failing_attempts=list(range(1, 1 + i % 4))))
    for step in range(60):
        if step % 7 == 3:
            for i in range(0, 12, 3):
                # Another input of the same workflow, in the same batch as its answers.
                part.append(_input(f"w{i}", EventType.START_REQUESTED, f"w{i}/again/{step}", "{}"))
        part.batch(max_records=5 if step % 2 else 50)
        if step == 20:
            middle = part.fold()
            assert middle == part.stored()
    assert part.fold() == part.stored()
    events = [part.codec.decode(value) for _, value in part.log]
    assert any(e.type is EventType.RETRY_SCHEDULED for e in events)
    by_workflow: dict[str, list[Event]] = {}
    for event in events:
        by_workflow.setdefault(event.workflow_id, []).append(event)
    reordered = [w for w, log in by_workflow.items() if processing_order(log) != log]
    assert reordered, "no batch held two inputs of one workflow: the reordering went untested"


def test_a_dead_lettered_input_parks_its_workflow_and_later_inputs_are_held() -> None:
    part = Partition(compile_versions(_saga()))
    part.start("w1", Order())
    part.start("w2", Order())
    part.batch(max_records=2)
    # An answer of an unknown step is unapplicable: dead-lettered, and w1 parked.
    part.append(_unknown_step_answer("w1"))
    part.batch(max_records=50)
    part.append(_input("w1", EventType.START_REQUESTED, "w1/again", "{}"))
    for _ in range(5):
        part.batch(max_records=50)
    assert any(key.startswith(PARKED_PREFIX) for key in part.stored())
    assert any(key.startswith(HELD_PREFIX) for key in part.stored())
    rebuilt = part.fold()
    assert rebuilt == part.stored()
    assert {k for k in rebuilt if k.startswith(PARKED_PREFIX)} == {parked_key("w1")}
    assert json.loads(rebuilt[b"pw1"])["reason"] == "unapplicable"

    # A redrive of the held-up signal with a known name frees the workflow: its held
    # input is applied after it, in log order, by the batch and by the fold alike.
    original = part.codec.encode(_input("w1", EventType.START_REQUESTED, "w1/redriven", "{}"))
    redrive = _input(
        "w1", EventType.REDRIVE_REQUESTED, "w1/redrive",
        json.dumps({"value": base64.b64encode(original).decode()}),
    )  # fmt: skip
    part.append(redrive)
    for _ in range(5):
        part.batch(max_records=50)
    assert not any(key.startswith((PARKED_PREFIX, HELD_PREFIX)) for key in part.stored())
    assert part.fold() == part.stored()


def _unknown_step_answer(wid: str) -> Event:
    return replace(
        _input(wid, EventType.STEP_SUCCEEDED, f"{wid}/bad", "{}"), step="nope", attempt=1
    )


def _operator(wid: str, kind: EventType, event_id: str, position: int, value: bytes = b"") -> Event:
    payload = {"dlq_partition": 0, "dlq_offset": position}
    if kind is EventType.REDRIVE_REQUESTED:
        payload["value"] = base64.b64encode(value).decode()  # type: ignore[assignment]
    return _input(wid, kind, event_id, json.dumps(payload))


def test_cancel_terminate_discard_and_a_second_redrive_fold_as_the_batches_took_them() -> None:
    part = Partition(compile_versions(_saga()))
    wids = ("w1", "w2", "w3", "w4")
    for wid in wids:
        part.start(wid, Order())
    part.batch(max_records=4)
    for wid in wids:
        part.append(_unknown_step_answer(wid))
    for _ in range(3):
        part.batch(max_records=50)
    assert {key for key in part.stored() if key.startswith(b"p")} == {
        b"pw1",
        b"pw2",
        b"pw3",
        b"pw4",
    }
    part.append(_input("w1", EventType.CANCEL_REQUESTED, "w1/cancel", "enough"))
    part.append(_input("w2", EventType.TERMINATE_REQUESTED, "w2/terminate", "stuck"))
    part.append(_operator("w3", EventType.DISCARD_REQUESTED, "w3/discard", 7))
    part.append(_operator("w3", EventType.DISCARD_REQUESTED, "w3/discard-again", 7))
    bad = part.codec.encode(_unknown_step_answer("w4"))
    part.append(_operator("w4", EventType.REDRIVE_REQUESTED, "w4/redrive", 8, bad))
    for _ in range(4):
        part.batch(max_records=50)
    letters = len(part.dead_letters)
    # The same record redriven again, or discarded after its redrive: no effect at all.
    part.append(_operator("w4", EventType.REDRIVE_REQUESTED, "w4/redrive-again", 8, bad))
    part.append(_operator("w4", EventType.DISCARD_REQUESTED, "w4/discard", 8))
    for _ in range(3):
        part.batch(max_records=50)
    stored = part.stored()
    assert len(part.dead_letters) == letters
    # Only w4 is parked still: its redriven record failed again.
    assert {key for key in stored if key.startswith(b"p")} == {b"pw4"}
    assert {key: stored[key] for key in stored if key.startswith(b"d")} == {
        b"d0:7": b"discarded", b"d0:8": b"redriven",
    }  # fmt: skip
    assert part.fold() == stored


def test_a_workflow_on_a_version_the_definition_lacks_is_an_error() -> None:
    part = Partition(compile_versions(_saga()))
    part.start("w1", Order())
    part.batch(max_records=50)
    with pytest.raises(ReplayError, match="version 1 of saga 'fold'"):
        part.fold(compile_versions(_saga(version=2)))


def test_processing_order_puts_each_input_before_its_own_decisions() -> None:
    a = _input("w", EventType.SIGNAL, "a")
    b = _input("w", EventType.SIGNAL, "b")
    decision = Event("a:0", "w", "fold", 1, EventType.SIGNAL_RECEIVED, Origin.PROCESSOR, 2,
                     cause="a")  # fmt: skip
    other = Event("b:0", "w", "fold", 1, EventType.SIGNAL_RECEIVED, Origin.PROCESSOR, 2, cause="b")
    assert processing_order([a, b, decision, other]) == [a, decision, b, other]

    timer = Event("w/t/5", "w", "fold", 1, EventType.TIMER_FIRED, Origin.PROCESSOR, 3)
    after = Event("w/t/5:0", "w", "fold", 1, EventType.STEP_SCHEDULED, Origin.PROCESSOR, 3,
                  cause="w/t/5")  # fmt: skip
    assert processing_order([a, decision, timer, after]) == [a, decision, timer, after]


def test_processing_order_keeps_a_duplicate_input_before_its_own_decisions() -> None:
    # The answer comes twice: the first delivery's segment closes after the second
    # opened under the same id, which must keep its decision.
    answer = Event("ans", "w", "fold", 1, EventType.STEP_SUCCEEDED, Origin.WORKER, 1,
                   step="reserve", attempt=1)  # fmt: skip
    ignored = Event("ans:0", "w", "fold", 1, EventType.ANSWER_IGNORED, Origin.PROCESSOR, 1,
                    cause="ans")  # fmt: skip
    other = _input("w", EventType.SIGNAL, "sig")
    cancel = _input("w", EventType.CANCEL_REQUESTED, "stop")
    other_done = Event("sig:0", "w", "fold", 1, EventType.SIGNAL_RECEIVED, Origin.PROCESSOR, 2,
                       cause="sig")  # fmt: skip
    stop_done = Event("stop:0", "w", "fold", 1, EventType.ANSWER_IGNORED, Origin.PROCESSOR, 2,
                      cause="stop")  # fmt: skip
    log = [answer, ignored, other, answer, cancel, other_done, ignored, stop_done]
    assert processing_order(log) == [
        answer,
        ignored,
        other,
        other_done,
        answer,
        ignored,
        cancel,
        stop_done,
    ]


def test_of_an_answer_delivered_twice_only_the_later_delivery_is_ignored() -> None:
    answer = Event("ans", "w", "fold", 1, EventType.STEP_SUCCEEDED, Origin.WORKER, 1,
                   step="reserve", attempt=1)  # fmt: skip
    ignored = Event("ans:0", "w", "fold", 1, EventType.ANSWER_IGNORED, Origin.PROCESSOR, 1,
                    cause="ans")  # fmt: skip
    scheduled = Event("ans:0", "w", "fold", 1, EventType.STEP_SCHEDULED, Origin.PROCESSOR, 1,
                      step="charge", attempt=1, cause="ans")  # fmt: skip
    # Both deliveries in one batch: their decisions follow them both.
    assert ignored_positions([answer, answer, scheduled, ignored]) == {1}
    assert ignored_positions([answer, scheduled, answer, ignored]) == {2}
    # A late answer, ignored each time it comes.
    assert ignored_positions([answer, answer, ignored, ignored]) == {0, 1}
    assert ignored_positions([answer, scheduled]) == set()
