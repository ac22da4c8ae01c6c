"""Records of a saga's event log that are not keyed by their workflow id, or sit on
another partition than murmur2 of it, go to the DLQ unapplied; nothing is parked."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from processors.runner import WorkerRunner
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.events import Event, EventType, Origin
from sagas.versions import SagaVersions
from schemas import EventCodec
from tests.integration.participants import flaky_order
from tests.integration.processors.saga_run_checks import (
    Record,
    check_run,
    effects_of,
    events_by_workflow,
    read_topic,
    wait_until_final,
)
from topics.dead_letter_headers import HEADER_PARTITION, HEADER_REASON, HEADER_WORKFLOW, DlqReason
from topics.naming import TopicNames
from topics.partitioning import partition_for

SAGAS = 50
KEYLESS = "keyless-0001"
"""Started with no key, on a partition that is not its workflow's."""
STRAY = "stray-0001"
"""Started keyed by its id, but produced to another partition than murmur2 names."""


def _start(workflow_id: str) -> bytes:
    event = Event(
        event_id=uuid.uuid4().hex,
        workflow_id=workflow_id,
        saga=flaky_order.SAGA_NAME,
        version=1,
        type=EventType.START_REQUESTED,
        origin=Origin.CLIENT,
        time_ms=time.time_ns() // 1_000_000,
        payload=flaky_order.order_input(workflow_id).model_dump_json(),
    )
    return EventCodec().encode(event)


def _produce(
    kafka: KafkaSettings, topic: str, workflow_id: str, key: bytes | None, partition: int
) -> bytes:
    """A start of ``workflow_id``, produced as a careless participant would: to ``partition``."""
    producer = Producer({**kafka.client_config(), "acks": "all"})
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            errors.append(error)

    value = _start(workflow_id)
    producer.produce(topic, value, key, partition=partition, on_delivery=delivered)
    assert producer.flush(30) == 0
    assert errors == []
    return value


def _wait_for_dlq(kafka: KafkaSettings, topic: str, count: int) -> list[Record]:
    deadline = time.monotonic() + 60
    while len(records := read_topic(kafka.client_config(), topic)) < count:
        assert time.monotonic() < deadline, f"{len(records)} of {count} records in {topic}"
        time.sleep(0.2)
    return records


@pytest.mark.timeout(180)
def test_misplaced_starts_go_to_the_dlq_and_their_workflows_still_start_at_home(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    names = TopicNames(flaky_order.SAGA_NAME, flaky_kafka.topic_prefix)
    producer = Producer(flaky_kafka.client_config())
    partitions = len(producer.list_topics(names.events, timeout=30).topics[names.events].partitions)
    assert partitions > 1
    wrong = {wid: (partition_for(wid.encode(), partitions) + 1) % partitions
             for wid in (KEYLESS, STRAY)}  # fmt: skip
    others = {wid: flaky_order.predict(wid) for wid in (f"order-{i:04d}" for i in range(SAGAS))}
    runner = WorkerRunner(
        flaky_versions, flaky_kafka, processor_settings=ProcessorSettings(state_dir=tmp_path)
    ).start()
    client = SagaClient(flaky_kafka)
    try:
        runner.wait_ready()
        keyless = _produce(flaky_kafka, names.events, KEYLESS, None, wrong[KEYLESS])
        stray = _produce(flaky_kafka, names.events, STRAY, STRAY.encode(), wrong[STRAY])
        for wid in others:
            client.start(
                flaky_order.saga, flaky_order.order_input(wid), workflow_id=wid, wait=False
            )
        client.flush()
        others_ended = wait_until_final(client, others, timeout=120)
        dead = _wait_for_dlq(flaky_kafka, names.dlq, 2)
        unapplied = client.statuses(flaky_order.SAGA_NAME)
        # Their homes never saw them: started properly, they run as any other.
        late = {wid: flaky_order.predict(wid) for wid in (KEYLESS, STRAY)}
        for wid in late:
            client.start(flaky_order.saga, flaky_order.order_input(wid), workflow_id=wid)
        late_ended = wait_until_final(client, late, timeout=60)
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()

    assert KEYLESS not in unapplied
    assert STRAY not in unapplied
    by_workflow = {record.headers[HEADER_WORKFLOW].decode(): record for record in dead}
    assert sorted(by_workflow) == [KEYLESS, STRAY]
    for wid, value, key, reason in (
        (KEYLESS, keyless, None, DlqReason.MISSING_KEY),
        (STRAY, stray, STRAY.encode(), DlqReason.WRONG_PARTITION),
    ):
        record = by_workflow[wid]
        assert (record.key, record.value) == (key, value), wid
        assert record.headers[HEADER_REASON] == reason.value.encode(), wid
        assert record.headers[HEADER_PARTITION] == str(wrong[wid]).encode(), wid
    assert not any(status.parked for status in {**others_ended, **late_ended}.values())

    expected = {**others, **late}
    events = events_by_workflow(read_topic(flaky_kafka.client_config(), names.events))
    statuses = {**others_ended, **late_ended}
    check_run(expected, statuses, events, effects_of(ledger_file), each_attempt_once=True)
