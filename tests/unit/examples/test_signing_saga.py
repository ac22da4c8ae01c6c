import time
from datetime import timedelta

from examples.signing_saga import DOCUMENTS, Signature, SigningRequest, saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment, assert_failure_matrix

DOC = SigningRequest(document_id="d-1", signer="bo@example.com")


def test_unsigned_for_37_days_reminds_then_cancels_in_under_a_second() -> None:
    began = time.perf_counter()
    with SagaTestEnvironment(saga) as env:
        wf = env.start(DOC, workflow_id="sign-never")
        env.advance(timedelta(days=29))
        assert env.executed(wf) == ["send_for_signature"]
        assert env.status(wf).current_steps == ("wait_for_signature",)
        env.advance(timedelta(days=1))
        assert env.executed(wf) == ["send_for_signature", "send_reminder"]
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPLETED
        assert env.executed(wf) == ["send_for_signature", "send_reminder", "cancel_document"]
        assert status.updated_ms - status.started_ms == timedelta(days=37) // timedelta(
            milliseconds=1
        )
    assert time.perf_counter() - began < 1.0
    assert DOCUMENTS["sign-never/cancel_document/action"] == "cancelled d-1"


def test_signed_after_the_reminder_is_processed_in_under_a_second() -> None:
    began = time.perf_counter()
    with SagaTestEnvironment(saga) as env:
        wf = env.start(DOC, workflow_id="sign-late")
        env.advance(timedelta(days=35))
        env.signal(wf, "signed", Signature(signed_by="Bo"))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.executed(wf) == ["send_for_signature", "send_reminder", "process_document"]
    assert time.perf_counter() - began < 1.0
    assert DOCUMENTS["sign-late/process_document/action"] == "filed, signed by Bo"


def test_a_signature_sent_before_the_wait_is_kept_until_the_wait() -> None:
    with SagaTestEnvironment(saga) as env:
        env.fail("send_for_signature", attempts=[1])
        wf = env.start(DOC, workflow_id="sign-early")
        env.signal(wf, "signed", Signature(signed_by="Early"))
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.run_until_complete(wf)
        assert env.executed(wf) == ["send_for_signature", "process_document"]
        assert EventType.SIGNAL_RECEIVED in env.event_types(wf)


def test_cancelling_while_waiting_withdraws_the_envelope() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(DOC, workflow_id="sign-cancel")
        env.advance(timedelta(days=2))
        env.cancel(wf, "signer left")
        status = env.status(wf)
        assert status.status is WorkflowStatus.CANCELLED
        assert env.compensated(wf) == ["send_for_signature"]
        assert env.states[wf].timers == {}
        env.signal(wf, "signed", Signature(signed_by="Too late"))
        assert env.event_types(wf)[-1] is EventType.SIGNAL_REJECTED


def test_the_failure_matrix_holds_with_the_signature_arriving() -> None:
    cases = assert_failure_matrix(saga, DOC, signals={"signed": Signature(signed_by="M")})
    assert {c.step for c in cases} == {
        "send_for_signature",
        "send_reminder",
        "cancel_document",
        "process_document",
    }
