"""A parked workflow has a way out, the DLQ says what became of each record, and a command
that reports failure has written nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from confluent_kafka import Producer

from sagas.events import EventType, WorkflowStatus
from tests.integration.long_running import mistakes_saga
from tests.integration.long_running.conftest import Runtime
from tests.integration.long_running.event_log import read_topic
from tests.integration.long_running.mistakes_cli import (
    MODULE,
    has,
    history_until,
    readable_history,
    sagas,
)
from topics.naming import TopicNames

NAME = mistakes_saga.saga.name
CLAIM = mistakes_saga.Claim(expense_id="e", amount_cents=10)
DECISION = mistakes_saga.Decision(approver="di")


def _parked(runtime: Runtime, wid: str) -> None:
    """Start ``wid``, let it wait for its decision, then park it with an unreadable record."""
    runtime.client.start(mistakes_saga.saga, CLAIM, workflow_id=wid)
    history_until(runtime.kafka, NAME, wid, has(EventType.WAIT_STARTED))
    producer = Producer({"bootstrap.servers": runtime.kafka.bootstrap_servers,
                         "partitioner": "murmur2_random"})  # fmt: skip
    producer.produce(TopicNames(NAME, runtime.kafka.topic_prefix).events, b"\xff garbage", wid)
    assert producer.flush(30) == 0
    deadline = time.monotonic() + 60
    while not runtime.client.status(NAME, wid).parked:
        assert time.monotonic() < deadline, f"{wid} was never parked"
        time.sleep(0.3)


def _letters(runtime: Runtime) -> list[dict[str, object]]:
    listed = sagas(runtime.kafka, "dlq", "list", NAME, "--output", "json")
    assert listed.exit_code == 0, listed.output
    letters: list[dict[str, object]] = json.loads(listed.stdout)
    return letters


def test_terminate_and_cancel_reach_a_parked_workflow(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    client = runtime.client
    _parked(runtime, "p-1")
    _parked(runtime, "p-2")
    # A signal to a parked workflow waits behind the dead record...
    client.signal(mistakes_saga.saga, "p-1", "rejected", DECISION)
    # ...but a terminate does not: the workflow ends, unparked.
    client.terminate(NAME, "p-1", "stuck for good")
    record = client.result(NAME, "p-1", 60)
    assert record.status is WorkflowStatus.TERMINATED
    assert not record.parked
    # A cancel compensates what completed: the claim is withdrawn.
    client.cancel(NAME, "p-2", "no longer needed")
    record = client.result(NAME, "p-2", 60)
    assert record.status is WorkflowStatus.CANCELLED
    assert not record.parked
    assert mistakes_saga.EFFECTS["p-2/submit/compensate"] == ["withdrawn"]
    assert [letter["state"] for letter in _letters(runtime)] == ["dead", "dead"]


def test_discard_unparks_and_redrive_sends_each_record_once(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    kafka, client = runtime.kafka, runtime.client
    _parked(runtime, "d-1")
    _parked(runtime, "d-2")
    client.signal(mistakes_saga.saga, "d-1", "approved", DECISION)

    discarded = sagas(kafka, "dlq", "discard", NAME, "--workflow", "d-1")
    assert discarded.exit_code == 0, discarded.output
    assert "discarded 1 record(s)" in discarded.output
    # The held signal went on behind it: the claim is paid.
    assert client.result(NAME, "d-1", 60).status is WorkflowStatus.COMPLETED
    audit = [
        e for e in readable_history(kafka, NAME, "d-1") if e.type is EventType.DEAD_LETTER_DISCARDED
    ]
    assert len(audit) == 1
    states = {letter["workflow_id"]: letter["state"] for letter in _letters(runtime)}
    assert states == {"d-1": "discarded", "d-2": "dead"}

    # Redrive --all sends only what is dead; the unreadable record is dead again after it.
    first = sagas(kafka, "dlq", "redrive", NAME, "--all")
    assert "redrove 1 record(s)" in first.output, first.output
    deadline = time.monotonic() + 60
    while len(letters := _letters(runtime)) < 3:
        assert time.monotonic() < deadline, letters
        time.sleep(0.3)
    assert sorted((str(x["workflow_id"]), str(x["state"])) for x in letters) == [
        ("d-1", "discarded"), ("d-2", "dead"), ("d-2", "redriven"),
    ]  # fmt: skip
    redriven = next(x for x in letters if x["state"] == "redriven")
    again = sagas(
        kafka, "dlq", "redrive", NAME, "--at", f"{redriven['partition']}:{redriven['offset']}"
    )
    assert again.exit_code == 1
    assert "were redriven already" in again.output
    # Discarding the new dead record frees d-2 for good.
    assert sagas(kafka, "dlq", "discard", NAME, "--all").exit_code == 0
    client.signal(mistakes_saga.saga, "d-2", "rejected", DECISION)
    assert client.result(NAME, "d-2", 60).status is WorkflowStatus.COMPLETED
    nothing = sagas(kafka, "dlq", "redrive", NAME, "--all")
    assert nothing.exit_code == 1
    assert "no dead record matches" in nothing.output
    assert len(_letters(runtime)) == 3


def test_requests_to_ended_or_unknown_workflows_write_nothing(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    kafka, client = runtime.kafka, runtime.client
    client.start(mistakes_saga.saga, CLAIM, workflow_id="x-1")
    history_until(kafka, NAME, "x-1", has(EventType.WAIT_STARTED))
    client.terminate(NAME, "x-1", "ended")
    client.result(NAME, "x-1", 60)
    events_topic = TopicNames(NAME, kafka.topic_prefix).events
    before = len(read_topic(kafka, events_topic))
    payload = DECISION.model_dump_json()
    for args, code in [
        (("signal", f"{MODULE}:saga", "x-1", "approved", "--payload", payload), 1),
        (("signal", NAME, "x-1", "approved", "--payload", payload), 1),
        (("cancel", NAME, "x-1"), 1),
        (("terminate", NAME, "x-1", "--reason", "again"), 1),
        (("signal", NAME, "nobody", "approved", "--payload", payload), 3),
        (("cancel", NAME, "nobody"), 3),
        (("terminate", NAME, "nobody", "--reason", "who"), 3),
    ]:
        answered = sagas(kafka, *args)
        assert answered.exit_code == code, (args, answered.output)
        lines = answered.output.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("Error: not sent: "), lines
    assert len(read_topic(kafka, events_topic)) == before
    assert read_topic(kafka, TopicNames(NAME, kafka.topic_prefix).dlq) == []
