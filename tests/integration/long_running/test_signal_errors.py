"""Signals to a workflow that does not exist or has ended: a clear error at the client, and
nothing written (the client asks the owning processor first)."""

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


def test_signal_to_a_missing_workflow_raises_and_writes_nothing(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(approval_saga.saga)
    decision = approval_saga.Decision(approver="nobody")
    with pytest.raises(WorkflowNotFoundError, match="does not exist") as caught:
        runtime.client.signal(approval_saga.saga, "no-such-claim", "approved", decision)
    assert caught.value.workflow_id == "no-such-claim"
    assert caught.value.saga == NAME
    assert read_history(runtime.kafka, NAME, "no-such-claim") == []
    assert read_topic(runtime.kafka, TopicNames(NAME, runtime.kafka.topic_prefix).dlq) == []


def test_signal_to_an_ended_workflow_raises_and_writes_nothing(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(approval_saga.saga)
    client, kafka = runtime.client, runtime.kafka
    claim = approval_saga.Claim(expense_id="c1", amount_cents=10)
    wid = client.start(approval_saga.saga, claim, workflow_id="ended-claim")
    _history_until(kafka, wid, lambda h: any(e.type is EventType.WAIT_STARTED for e in h))
    client.signal(approval_saga.saga, wid, "approved", approval_saga.Decision(approver="a"))
    assert client.result(NAME, wid, timeout=60).status is WorkflowStatus.COMPLETED
    ended = read_history(kafka, NAME, wid)

    late = approval_saga.Decision(approver="late")
    with pytest.raises(WorkflowEndedError, match="already ended COMPLETED") as caught:
        client.signal(approval_saga.saga, wid, "rejected", late)
    assert caught.value.workflow_id == wid
    with pytest.raises(WorkflowEndedError):
        client.terminate(approval_saga.saga, wid, "too late")
    assert read_history(kafka, NAME, wid) == ended
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
