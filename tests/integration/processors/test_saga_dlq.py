"""Poison records on a saga's event log go to its DLQ; their workflows park, others go on."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from processors.runner import WorkerRunner
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from sagas.errors import SerializationError, WorkflowNotFoundError
from sagas.events import CommandKind, Event, EventType, Origin, WorkflowStatus, idempotency_key
from schemas import EventCodec
from tests.integration.participants import flaky_order
from tests.integration.processors.saga_run_checks import (
    check_run,
    effects_of,
    events_by_workflow,
    read_topic,
    wait_until_final,
)
from topics.dead_letter_headers import (
    HEADER_ATTEMPTS,
    HEADER_EXCEPTION,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TOPIC,
    HEADER_WORKFLOW,
    DlqReason,
)
from topics.naming import TopicNames

SAGAS = 200
HELD = "held-0001"
"""A workflow in flight when an answer naming an unknown step arrives for it."""
GARBAGE = "garbage-0001"
STRANGER = "stranger-0001"


class _Sent:
    """A producer that remembers where each record it sent landed."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = Producer(
            {**kafka.client_config(), "partitioner": "murmur2_random", "acks": "all"}
        )
        self.where: dict[str, tuple[int, int]] = {}

    def send(self, topic: str, label: str, key: bytes, value: bytes) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            assert error is None, f"sending {label} failed: {error}"
            partition, offset = message.partition(), message.offset()
            assert partition is not None
            assert offset is not None
            self.where[label] = (partition, offset)

        self._producer.produce(topic, value, key, on_delivery=delivered)
        assert self._producer.flush(30) == 0


def _event(workflow_id: str, saga: str, type_: EventType, **fields: Any) -> bytes:
    event = Event(
        event_id=uuid.uuid4().hex,
        workflow_id=workflow_id,
        saga=saga,
        version=1,
        type=type_,
        origin=Origin.WORKER if type_ is EventType.STEP_SUCCEEDED else Origin.CLIENT,
        time_ms=time.time_ns() // 1_000_000,
        **fields,
    )
    return EventCodec().encode(event)


def _wait_consumed(
    kafka: KafkaSettings, group: str, topic: str, partition: int, offset: int
) -> None:
    """Block until ``group`` has committed past ``offset``: the record was processed."""
    consumer = Consumer({**kafka.client_config(), "group.id": group})
    try:
        deadline = time.monotonic() + 60
        while True:
            [committed] = consumer.committed([TopicPartition(topic, partition)], timeout=30)
            if committed.offset > offset:
                return
            assert time.monotonic() < deadline, f"{group} never got past offset {offset}"
            time.sleep(0.1)
    finally:
        consumer.close()


def _wait_started(client: SagaClient, workflow_id: str) -> None:
    """Block until ``workflow_id`` is running its charge."""
    deadline = time.monotonic() + 30
    while True:
        try:
            status = client.status(flaky_order.SAGA_NAME, workflow_id)
        except WorkflowNotFoundError:
            status = None
        if status is not None:
            assert status.status is WorkflowStatus.RUNNING, status
            assert status.current_steps == ("charge",), status
            return
        assert time.monotonic() < deadline, f"{workflow_id} did not start"
        time.sleep(0.05)


def _charge_answer_of(
    kafka: KafkaSettings, topic: str, workflow_id: str, poison: bytes
) -> tuple[int, int]:
    """Where the worker's answer to ``workflow_id``'s charge landed; waits for it."""
    codec, deadline = EventCodec(), time.monotonic() + 30
    while True:
        found = []
        for record in read_topic(kafka.client_config(), topic):
            if record.key != workflow_id.encode() or record.value in (None, poison):
                continue
            assert record.value is not None
            event = codec.decode(record.value)
            if event.type is EventType.STEP_SUCCEEDED and event.step == "charge":
                found.append((record.partition, record.offset))
        if found:
            assert len(found) == 1, f"the charge of {workflow_id} was answered {len(found)} times"
            return found[0]
        assert time.monotonic() < deadline, f"the charge of {workflow_id} was never answered"
        time.sleep(0.2)


@pytest.mark.timeout(180)
def test_poison_records_go_to_the_dlq_and_park_only_their_workflows(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    """Garbage, an unknown saga and an unknown step land in the DLQ with their headers."""
    names = TopicNames(flaky_order.SAGA_NAME, flaky_kafka.topic_prefix)
    garbage = random.Random(3).randbytes(64)
    with pytest.raises(SerializationError):
        EventCodec().decode(garbage)
    # HELD's first charge succeeds, so its answer is a step_succeeded the test can find.
    assert flaky_order.outcome(HELD, "charge", CommandKind.ACTION, 1) is flaky_order.Outcome.OK
    expected = {wid: flaky_order.predict(wid) for wid in (f"order-{i:04d}" for i in range(SAGAS))}
    runner = WorkerRunner(
        flaky_versions, flaky_kafka, processor_settings=ProcessorSettings(state_dir=tmp_path)
    ).start()
    client = SagaClient(flaky_kafka)
    sent = _Sent(flaky_kafka)
    try:
        runner.wait_ready()
        # HELD's charge takes 1.5 s, so the poison answer below reaches the log first.
        held_input = flaky_order.order_input(HELD, hold_ms=1500)
        client.start(flaky_order.saga, held_input, workflow_id=HELD)
        _wait_started(client, HELD)
        sent.send(names.events, "garbage", GARBAGE.encode(), garbage)
        stranger = _event(STRANGER, "no_such_saga", EventType.START_REQUESTED, payload="{}")
        sent.send(names.events, "stranger", STRANGER.encode(), stranger)
        unknown_step = _event(
            HELD,
            flaky_order.SAGA_NAME,
            EventType.STEP_SUCCEEDED,
            step="no_such_step",
            attempt=1,
            payload="{}",
        )
        sent.send(names.events, "unknown_step", HELD.encode(), unknown_step)
        # A valid start behind the garbage of the same key must wait, not run.
        late_start = _event(
            GARBAGE,
            flaky_order.SAGA_NAME,
            EventType.START_REQUESTED,
            payload=flaky_order.order_input(GARBAGE).model_dump_json(),
        )
        sent.send(names.events, "late_start", GARBAGE.encode(), late_start)
        for wid in expected:
            client.start(
                flaky_order.saga, flaky_order.order_input(wid), workflow_id=wid, wait=False
            )
        client.flush()
        statuses = wait_until_final(client, expected, timeout=120)

        answer_at = _charge_answer_of(flaky_kafka, names.events, HELD, unknown_step)
        assert answer_at[0] == sent.where["unknown_step"][0]
        assert answer_at[1] > sent.where["unknown_step"][1]
        # Once the processor has committed past HELD's real answer, it has read it (and,
        # HELD being parked, held it instead of applying it).
        _wait_consumed(flaky_kafka, names.processor_group, names.events, *answer_at)
        held_status = client.status(flaky_order.SAGA_NAME, HELD)
        others = client.statuses(flaky_order.SAGA_NAME)
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()

    config = flaky_kafka.client_config()
    events = events_by_workflow(read_topic(config, names.events), garbage=frozenset({garbage}))
    check_run(expected, statuses, events, effects_of(ledger_file, expected), each_attempt_once=True)

    assert held_status.parked
    assert held_status.status is WorkflowStatus.RUNNING
    assert held_status.current_steps == ("charge",)
    held_types = [e.type for e in events[HELD]]
    assert held_types.count(EventType.STEP_SCHEDULED) == 1, held_types
    held_effects = effects_of(ledger_file, [HELD])
    assert set(held_effects.applied) == {idempotency_key(HELD, "charge", CommandKind.ACTION)}, (
        "only the charge ran: its answer and everything after it are held"
    )

    assert GARBAGE not in others
    assert STRANGER not in others
    assert [e.type for e in events[GARBAGE]] == [EventType.START_REQUESTED]
    assert effects_of(ledger_file, [GARBAGE, STRANGER]).attempts == {}

    dead = {r.key: r for r in read_topic(config, names.dlq)}
    assert set(dead) == {GARBAGE.encode(), STRANGER.encode(), HELD.encode()}
    cases = {
        "garbage": (GARBAGE, garbage, DlqReason.UNDECODABLE, ""),
        "stranger": (STRANGER, stranger, DlqReason.UNKNOWN_SAGA, "no_such_saga"),
        "unknown_step": (HELD, unknown_step, DlqReason.UNAPPLICABLE, "no_such_step"),
    }
    for label, (wid, value, reason, mentioned) in cases.items():
        record = dead[wid.encode()]
        partition, offset = sent.where[label]
        assert record.value == value, label
        assert record.headers[HEADER_REASON] == reason.value.encode(), label
        assert record.headers[HEADER_TOPIC] == names.events.encode(), label
        assert record.headers[HEADER_PARTITION] == str(partition).encode(), label
        assert record.headers[HEADER_OFFSET] == str(offset).encode(), label
        assert record.headers[HEADER_ATTEMPTS] == b"1", label
        assert record.headers[HEADER_WORKFLOW] == wid.encode(), label
        exception = record.headers[HEADER_EXCEPTION].decode()
        assert exception, label
        assert mentioned in exception, (label, exception)
