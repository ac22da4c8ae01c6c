"""The test kit runs the runtime's own core: a poison record parks its workflow, later
inputs are held, a redrive lets them through, a result too large fails its step — as on
the broker."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import Saga, SagaError, StepContext
from sagas.engine.fold import RESULT_TOO_LARGE
from sagas.events import Event, EventType, Origin, WorkflowStatus
from sagas.testing import SagaTestEnvironment
from schemas import EventCodec
from topics.dead_letter_headers import DlqReason

CODEC = EventCodec()


class Claim(BaseModel):
    """What the saga reviews."""

    amount: int


class Verdict(BaseModel):
    """A reviewer's decision."""

    ok: bool


def review_saga() -> Saga[Claim]:
    saga = Saga("review", input=Claim)

    @saga.step(timeout=timedelta(seconds=5))
    def file(ctx: StepContext[Claim]) -> str:
        return "x" * ctx.input.amount

    @file.compensation
    def unfile(ctx: StepContext[Claim]) -> None:
        return None

    saga.wait_for("verdict", timeout=timedelta(days=1))

    @saga.step(timeout=timedelta(seconds=5))
    def pay(ctx: StepContext[Claim]) -> int:
        return ctx.input.amount

    @pay.compensation
    def refund(ctx: StepContext[Claim]) -> None:
        return None

    return saga


def _signal(workflow_id: str, name: str) -> Event:
    return Event(
        event_id=f"raw-{name}", workflow_id=workflow_id, saga="review", version=0,
        type=EventType.SIGNAL, origin=Origin.CLIENT, time_ms=0, name=name,
        payload=Verdict(ok=True).model_dump_json(),
    )  # fmt: skip


def _redrive(workflow_id: str, value: bytes) -> bytes:
    payload = json.dumps({"value": base64.b64encode(value).decode()})
    event = Event(
        event_id="redrive-1", workflow_id=workflow_id, saga="review", version=0,
        type=EventType.REDRIVE_REQUESTED, origin=Origin.CLIENT, time_ms=0, payload=payload,
    )  # fmt: skip
    return CODEC.encode(event)


def test_an_undecodable_record_parks_its_workflow_and_later_inputs_wait() -> None:
    with SagaTestEnvironment(review_saga()) as env:
        wf = env.start(Claim(amount=3), workflow_id="claim-1")
        env.deliver_raw(wf.encode(), b"\x00not avro")
        assert env.parked(wf)
        (letter,) = env.dead_letters()
        assert letter.reason == DlqReason.UNDECODABLE
        assert letter.workflow_id == wf
        assert letter.value == b"\x00not avro"
        assert env.status(wf).parked
        before = env.history(wf)
        env.signal(wf, "verdict", Verdict(ok=True))  # held, not applied
        assert env.history(wf) == before
        with pytest.raises(SagaError, match=r"parked.*undecodable"):
            env.run_until_complete(wf)
        # Redriving the record (repaired) applies it, then what was held, in log order.
        env.deliver_raw(wf.encode(), _redrive(wf, CODEC.encode(_signal(wf, "verdict"))))
        assert not env.parked(wf)
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        signals = [e for e in env.history(wf) if e.type is EventType.SIGNAL]
        assert signals[0].event_id == "raw-verdict"
        assert env.executed(wf) == ["file", "pay"]


def test_a_cancel_takes_a_parked_workflow_out_after_what_was_held_for_it() -> None:
    with SagaTestEnvironment(review_saga()) as env:
        wf = env.start(Claim(amount=3))
        env.deliver_raw(wf.encode(), b"\x00not avro")
        env.signal(wf, "verdict", Verdict(ok=True))  # held behind the poison record
        env.cancel(wf)
        assert not env.parked(wf)
        # The held signal is applied first, then the cancel; the environment checks after
        # every step that the history it keeps folds to the state the core stored.
        asked = [e.type for e in env.history(wf) if e.origin is Origin.CLIENT]
        assert asked == [EventType.START_REQUESTED, EventType.SIGNAL, EventType.CANCEL_REQUESTED]
        assert env.run_until_complete(wf).status is WorkflowStatus.CANCELLED


def test_an_unknown_signal_is_rejected_by_name_and_parks_nothing_as_on_the_broker() -> None:
    with SagaTestEnvironment(review_saga()) as env:
        wf = env.start(Claim(amount=3))
        env.signal(wf, "maybe")
        rejected = [e for e in env.history(wf) if e.type is EventType.SIGNAL_REJECTED]
        assert [(e.name, e.error.type if e.error else None) for e in rejected] == [
            ("maybe", "UnknownSignal")
        ]
        assert not env.parked(wf)
        assert env.dead_letters() == []
        env.signal(wf, "verdict", Verdict(ok=True))
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPLETED


def test_a_record_keyed_by_another_id_goes_to_the_dlq_and_parks_nothing() -> None:
    with SagaTestEnvironment(review_saga()) as env:
        wf = env.start(Claim(amount=3))
        env.deliver_raw(b"someone-else", CODEC.encode(_signal(wf, "verdict")))
        assert [x.reason for x in env.dead_letters()] == [DlqReason.KEY_MISMATCH]
        assert not env.parked(wf)
        assert env.status(wf).status is WorkflowStatus.RUNNING


def test_a_result_too_large_for_its_topic_fails_the_step_and_compensates() -> None:
    with SagaTestEnvironment(review_saga()) as env:
        wf = env.start(Claim(amount=2_000_000))
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        refused = [e for e in env.history(wf) if e.type is EventType.STEP_FAILED]
        assert refused[0].error is not None
        assert refused[0].error.type == RESULT_TOO_LARGE
        assert env.dead_letters() == []
