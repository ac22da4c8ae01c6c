from datetime import timedelta

from examples.onboarding_saga import OUTBOX, SignUp, saga
from sagas.events import WorkflowStatus
from sagas.testing import SagaTestEnvironment, assert_failure_matrix

USER = SignUp(user_id="u-1", email="eve@example.com")


def test_mails_go_out_on_day_0_3_and_10() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(USER, workflow_id="onb")
        assert env.executed(wf) == ["create_account", "send_welcome"]
        env.advance(timedelta(days=3) - timedelta(milliseconds=1))
        assert env.executed(wf) == ["create_account", "send_welcome"]
        env.advance(timedelta(milliseconds=1))
        assert env.executed(wf)[-1] == "send_tutorial"
        env.advance(timedelta(days=7))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
    assert OUTBOX["onb/send_offer/action"] == "offer to eve@example.com"


def test_terminate_while_sleeping_stops_without_compensation() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(USER, workflow_id="onb-stop")
        env.terminate(wf, "spam account")
        status = env.status(wf)
        assert status.status is WorkflowStatus.TERMINATED
        assert status.error is not None
        assert status.error.message == "spam account"
        env.advance(timedelta(days=30))
        assert env.executed(wf) == ["create_account", "send_welcome"]
        assert env.compensated(wf) == []


def test_the_failure_matrix_holds() -> None:
    assert len(assert_failure_matrix(saga, USER)) == 12


def test_the_trial_lasts_as_long_as_the_input_says() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(USER.model_copy(update={"trial_days": 2}), workflow_id="onb-short")
        env.advance(timedelta(days=3))
        assert env.executed(wf)[-1] == "send_tutorial"
        trial = next(e for e in env.history(wf) if e.step == "wait_7_days")
        assert trial.due_ms is not None
        assert trial.due_ms - trial.time_ms == timedelta(days=2) // timedelta(milliseconds=1)
        env.advance(timedelta(days=2) - timedelta(milliseconds=1))
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.advance(timedelta(milliseconds=1))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
