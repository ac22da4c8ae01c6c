"""Signals to a workflow that does not exist or has ended: a clear error at the client, and
a record in the log (``signal_rejected`` where the workflow has a state, the DLQ where not)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.errors import WorkflowEndedError, WorkflowNotFoundError
from sagas.events import Event, EventType, WorkflowStatus
from tests.integration.long_running import approval_saga
from tests.integration.long_running.conftest import Runtime
from tests.integration.long_running.event_log import read_topic
from topics.dead_letter_headers import HEADER_REASON, HEADER_WORKFLOW, DlqReason
from topics.naming import TopicNames

NAME = approval_saga.saga.name


def _history_until(
    kafka: KafkaSettings, wid: str, done: Callable[[list[Event]], bool]
) -> list[Event]:
    deadline = time.monotonic() + 60
    while True:
        history = read_history(kafka, NAME, wid)
        if done(history):
            return history
        assert time.monotonic() < deadline, [e.type.value for e in history]
        time.sleep(0.3)


def test_signal_to_a_missing_workflow_raises_and_is_dead_lettered(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(approval_saga.saga)
    decision = approval_saga.Decision(approver="nobody")
    with pytest.raises(WorkflowNotFoundError, match="does not exist") as caught:
        runtime.client.signal(approval_saga.saga, "no-such-claim", "approved", decision)
    assert caught.value.workflow_id == "no-such-claim"
    assert caught.value.saga == NAME

    history = read_history(runtime.kafka, NAME, "no-such-claim")
    assert [(e.type, e.name) for e in history] == [(EventType.SIGNAL, "approved")]
    dlq = TopicNames(NAME, runtime.kafka.topic_prefix).dlq
    deadline = time.monotonic() + 60
    while not (records := read_topic(runtime.kafka, dlq)):
        assert time.monotonic() < deadline, "the signal never reached the DLQ"
        time.sleep(0.3)
    assert [r.key for r in records] == [b"no-such-claim"]
    assert records[0].headers[HEADER_REASON] == DlqReason.UNAPPLICABLE.value.encode()
    assert records[0].headers[HEADER_WORKFLOW] == b"no-such-claim"


def test_signal_to_an_ended_workflow_raises_and_is_rejected_in_the_log(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(approval_saga.saga)
    client, kafka = runtime.client, runtime.kafka
    claim = approval_saga.Claim(expense_id="c1", amount_cents=10)
    wid = client.start(approval_saga.saga, claim, workflow_id="ended-claim")
    _history_until(kafka, wid, lambda h: any(e.type is EventType.WAIT_STARTED for e in h))
    client.signal(approval_saga.saga, wid, "approved", approval_saga.Decision(approver="a"))
    assert client.result(NAME, wid, timeout=60).status is WorkflowStatus.COMPLETED

    late = approval_saga.Decision(approver="late")
    with pytest.raises(WorkflowEndedError, match="already ended COMPLETED") as caught:
        client.signal(approval_saga.saga, wid, "rejected", late)
    assert caught.value.workflow_id == wid
    with pytest.raises(WorkflowEndedError):
        client.terminate(approval_saga.saga, wid, "too late")

    history = _history_until(
        kafka, wid, lambda h: any(e.type is EventType.ANSWER_IGNORED for e in h)
    )
    rejected = [e for e in history if e.type is EventType.SIGNAL_REJECTED]
    assert len(rejected) == 1, [e.type.value for e in history]
    assert rejected[0].name == "rejected"
    assert rejected[0].payload == late.model_dump_json()
    assert rejected[0].error is not None
    assert rejected[0].error.type == "WorkflowEnded"
    completed_at = next(i for i, e in enumerate(history) if e.type is EventType.COMPLETED)
    assert history.index(rejected[0]) > completed_at
    ignored = [e for e in history if e.type is EventType.ANSWER_IGNORED]
    assert [e.name for e in ignored] == ["terminate"]
    # The late signal changed nothing: the workflow still ended as it did.
    assert client.status(NAME, wid).status is WorkflowStatus.COMPLETED


def test_a_request_that_ends_a_running_workflow_raises_nothing(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(approval_saga.saga)
    client, kafka = runtime.client, runtime.kafka
    claim = approval_saga.Claim(expense_id="c2", amount_cents=10)
    wid = client.start(approval_saga.saga, claim, workflow_id="stopped-claim")
    _history_until(kafka, wid, lambda h: any(e.type is EventType.WAIT_STARTED for e in h))
    # The workflow ends TERMINATED at once, possibly before the client looks: the request
    # was accepted all the same.
    client.terminate(approval_saga.saga, wid, "claim withdrawn by phone")
    record = client.result(NAME, wid, timeout=60)
    assert record.status is WorkflowStatus.TERMINATED
    assert record.error is not None
    assert record.error.message == "claim withdrawn by phone"
