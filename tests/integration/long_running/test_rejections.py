"""Mistakes a user makes get a clear answer and freeze nothing: a mistyped signal, a
payload or an input that does not fit, a duplicate start, a compensation that fails."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from sagas.errors import SerializationError
from sagas.events import EventType, WorkflowStatus
from tests.integration.long_running import mistakes_saga
from tests.integration.long_running.conftest import Runtime
from tests.integration.long_running.event_log import read_topic
from tests.integration.long_running.mistakes_cli import MODULE, has, history_until, sagas
from topics.naming import TopicNames

NAME = mistakes_saga.saga.name
CLAIM = mistakes_saga.Claim(expense_id="e", amount_cents=10)


def _waiting(runtime: Runtime, wid: str) -> None:
    runtime.client.start(mistakes_saga.saga, CLAIM, workflow_id=wid)
    history_until(runtime.kafka, NAME, wid, has(EventType.WAIT_STARTED))


def test_a_mistyped_signal_is_refused_and_the_right_one_still_lands(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    kafka = runtime.kafka
    _waiting(runtime, "e-1")
    decision = json.dumps({"approver": "di"})

    # With the definition, the CLI refuses the typo before writing anything.
    typo = sagas(kafka, "signal", f"{MODULE}:saga", "e-1", "aproved", "--payload", decision)
    assert typo.exit_code == 1, typo.output
    assert "has no signal 'aproved' (its signals: approved, rejected)" in typo.output
    assert not [e for e in history_until(kafka, NAME, "e-1", bool) if e.type is EventType.SIGNAL]

    # By bare name it is sent; the processor records it rejected, with the reason.
    assert sagas(kafka, "signal", NAME, "e-1", "aproved", "--payload", decision).exit_code == 0
    history = history_until(kafka, NAME, "e-1", has(EventType.SIGNAL_REJECTED))
    [rejected] = [e for e in history if e.type is EventType.SIGNAL_REJECTED]
    assert rejected.name == "aproved"
    assert rejected.error is not None
    assert rejected.error.type == "UnknownSignal"
    status = runtime.client.status(NAME, "e-1")
    assert not status.parked
    assert status.status is WorkflowStatus.RUNNING
    assert status.last_rejection is not None
    assert "'aproved'" in status.last_rejection

    # Nothing was parked: the right signal goes through and the claim is paid.
    assert sagas(kafka, "signal", NAME, "e-1", "approved", "--payload", decision).exit_code == 0
    assert runtime.client.result(NAME, "e-1", 60).status is WorkflowStatus.COMPLETED
    assert mistakes_saga.EFFECTS["e-1/pay/action"] == ["paid by di"]
    assert read_topic(kafka, TopicNames(NAME, kafka.topic_prefix).dlq) == []


def test_a_payload_that_fails_the_waits_model_never_reaches_a_step(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    kafka, client = runtime.kafka, runtime.client
    _waiting(runtime, "e-2")
    with pytest.raises(SerializationError, match=r"not sent: .*approver"):
        client.signal(mistakes_saga.saga, "e-2", "approved", {"nope": 1})

    client.signal(NAME, "e-2", "approved", {"nope": 1})
    history = history_until(kafka, NAME, "e-2", has(EventType.SIGNAL_REJECTED))
    [rejected] = [e for e in history if e.type is EventType.SIGNAL_REJECTED]
    assert rejected.error is not None
    assert rejected.error.type == "InvalidSignalPayload"
    assert "approver" in rejected.error.message
    assert "\n" not in rejected.error.message
    assert not [e for e in history if e.type is EventType.SIGNAL_RECEIVED]

    client.signal(mistakes_saga.saga, "e-2", "approved", mistakes_saga.Decision(approver="ok"))
    record = client.result(NAME, "e-2", 60)
    assert record.status is WorkflowStatus.COMPLETED
    assert mistakes_saga.EFFECTS["e-2/pay/action"] == ["paid by ok"]


def test_a_start_by_name_with_an_input_that_does_not_fit_fails_before_any_step(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    kafka = runtime.kafka
    answered = sagas(kafka, "start", NAME, "--id", "e-3", "--input", '{"nonsense": true}')
    assert answered.exit_code == 0, answered.output
    history = history_until(kafka, NAME, "e-3", has(EventType.FAILED))
    assert [e.type.value for e in history] == ["start_requested", "started", "failed"]
    record = runtime.client.result(NAME, "e-3", 60)
    assert record.status is WorkflowStatus.FAILED
    assert record.error is not None
    assert record.error.type == "InvalidInput"
    assert record.error.non_retryable
    assert "expense_id" in record.error.message
    assert not [key for key in mistakes_saga.EFFECTS if key.startswith("e-3/")]


def test_a_duplicate_start_says_so_and_leaves_the_status_untouched(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    kafka, client = runtime.kafka, runtime.client
    claim = CLAIM.model_dump_json()
    first = sagas(
        kafka, "start", f"{MODULE}:saga", "--id", "e-4", "--input", claim, "--output", "json"
    )
    assert json.loads(first.stdout) == {"workflow_id": "e-4", "created": True, "status": None}
    history_until(kafka, NAME, "e-4", has(EventType.WAIT_STARTED))
    client.signal(mistakes_saga.saga, "e-4", "rejected", mistakes_saga.Decision(approver="x"))
    ended = client.result(NAME, "e-4", 60)
    status_topic = TopicNames(NAME, kafka.topic_prefix).status
    before = [r for r in read_topic(kafka, status_topic) if r.key == b"e-4"]

    again = sagas(kafka, "start", NAME, "--id", "e-4", "--input", '{"other": 1}')
    assert again.exit_code == 0
    assert "e-4 already exists (status COMPLETED); the input was not used" in again.output
    outcome = client.start_or_get(NAME, {"other": 2}, workflow_id="e-4")
    assert not outcome.created
    assert outcome.existing is not None
    assert outcome.existing.status is WorkflowStatus.COMPLETED
    # A plain start always sends: the processor records it ignored and changes nothing.
    client.start(NAME, {"other": 3}, workflow_id="e-4")
    history = history_until(kafka, NAME, "e-4", has(EventType.START_IGNORED))
    assert [e.payload for e in history if e.type is EventType.START_REQUESTED][1:] == [
        '{"other": 3}'
    ]
    after = [r for r in read_topic(kafka, status_topic) if r.key == b"e-4"]
    assert after == before
    assert client.status(NAME, "e-4").updated_ms == ended.updated_ms


def test_a_failed_compensation_names_the_failed_step_and_the_compensation(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.fragile)
    client = runtime.client
    client.start(mistakes_saga.fragile, mistakes_saga.Order(order_id="o"), workflow_id="o-1")
    record = client.result("fragile", "o-1", 60)
    assert record.status is WorkflowStatus.FAILED
    assert (record.failed_step, record.failed_compensation) == ("charge", "reserve")
    assert record.error is not None
    assert "lost the reservation" in record.error.message
    shown = sagas(runtime.kafka, "status", "fragile", "o-1")
    assert "failed_step:    charge" in shown.output
    assert "failed_compensation:reserve" in shown.output.replace(" ", "")
