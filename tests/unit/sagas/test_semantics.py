"""Workflow semantics through the test kit: cancel, waits, routing, compensation retries."""

from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import END, Retry, Saga, SagaError, StepContext, StepKind, UnapplicableEventError
from sagas.engine import compile_saga
from sagas.events import CommandKind, EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment

SECOND = timedelta(seconds=1)


class In(BaseModel):
    n: int = 0


def undo(ctx: StepContext[In]) -> None:
    return None


def compensatable(saga: Saga[In], name: str, **options: object) -> None:
    saga.step(name=name, timeout=SECOND, **options)(lambda ctx: name).compensation(  # type: ignore[call-overload]
        undo, retry=Retry(max_attempts=3, initial_interval=SECOND), timeout=SECOND
    )


def grouped() -> Saga[In]:
    saga = Saga("grouped", input=In)
    compensatable(saga, "before")
    with saga.parallel("group"):
        compensatable(saga, "fast")
        compensatable(saga, "flaky", retry=Retry(max_attempts=5, initial_interval=SECOND * 10))
        compensatable(saga, "slow")
    return saga


def test_cancel_in_a_group_abandons_retries_and_undoes_what_settled() -> None:
    with SagaTestEnvironment(grouped()) as env:
        env.fail("flaky", attempts=[1])
        env.time_out("slow", attempts=[1])
        wf = env.start(In())
        assert env.states[wf].timers.keys() == {"d:slow", "r:flaky"}
        env.cancel(wf, "changed my mind")
        assert env.status(wf).status is WorkflowStatus.RUNNING
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.CANCELLED
        assert status.error is not None
        assert status.error.message == "changed my mind"
        assert env.compensated(wf) == ["fast", "before"]
        assert env.executed(wf) == ["before", "fast"]


def test_a_timed_out_compensation_is_retried() -> None:
    saga = Saga("undo-slowly", input=In)
    compensatable(saga, "a")
    saga.step(name="boom", kind=StepKind.PIVOT)(lambda ctx: None)
    with SagaTestEnvironment(saga) as env:
        env.fail("boom", non_retryable=True)
        env.time_out("a", compensation=True, attempts=[1])
        wf = env.start(In())
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPENSATED
        types = env.event_types(wf)
        assert types.count(EventType.STEP_TIMED_OUT) == 1
        assert types.count(EventType.COMPENSATION_RETRY_SCHEDULED) == 1
        assert env.executed(wf, CommandKind.COMPENSATE) == ["a"]


def test_a_compensation_that_keeps_failing_fails_the_workflow_naming_it() -> None:
    saga = Saga("stuck", input=In)
    compensatable(saga, "a")
    saga.step(name="boom", kind=StepKind.PIVOT)(lambda ctx: None)
    with SagaTestEnvironment(saga) as env:
        env.fail("boom", non_retryable=True)
        env.fail("a", compensation=True)
        wf = env.start(In())
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.FAILED
        # The step whose failure started it, and the compensation that could not be done.
        assert (status.failed_step, status.failed_compensation) == ("boom", "a")
        assert env.event_types(wf).count(EventType.COMPENSATION_FAILED) == 3


def waiting(on_timeout: str | None) -> Saga[In]:
    saga = Saga("waiting", input=In)
    compensatable(saga, "a")
    saga.wait_for("go", timeout=timedelta(hours=1), on_timeout=on_timeout)
    saga.step(name="after", kind=StepKind.PIVOT, then=END)(lambda ctx: ctx.signal("go"))
    saga.step(name="late", kind=StepKind.RETRIABLE, retry=Retry(max_attempts=2), timeout=SECOND)(
        lambda ctx: "late"
    )
    return saga


def test_a_wait_timing_out_without_a_route_compensates() -> None:
    with SagaTestEnvironment(waiting(None)) as env:
        wf = env.start(In())
        env.advance(timedelta(hours=1))
        status = env.status(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        assert status.failed_step == "go"
        assert status.error is not None
        assert status.error.type == "WaitTimedOut"
        assert env.compensated(wf) == ["a"]


def test_a_wait_timing_out_with_a_route_jumps_there() -> None:
    with SagaTestEnvironment(waiting("late")) as env:
        wf = env.start(In())
        env.advance(timedelta(hours=1))
        assert env.result(wf) == {"a": "a", "late": "late"}


def test_signals_before_the_wait_are_kept_in_order() -> None:
    with SagaTestEnvironment(waiting(None)) as env:
        env.time_out("a", attempts=[1])
        wf = env.start(In())
        env.signal(wf, "go", {"first": 1})
        env.signal(wf, "go", {"second": 2})
        assert env.states[wf].pending == [("go", '{"first":1}'), ("go", '{"second":2}')]
        env.run_until_complete(wf)
        assert env.result(wf)["after"] == {"first": 1}
        assert env.states[wf].pending == [("go", '{"second":2}')]


def test_run_until_complete_says_when_only_a_signal_can_help() -> None:
    saga = Saga("forever", input=In)
    compensatable(saga, "a")
    saga.wait_for("go")
    with SagaTestEnvironment(saga) as env:
        wf = env.start(In())
        with pytest.raises(SagaError, match="waits for something no timer will bring"):
            env.run_until_complete(wf)


def test_on_failure_routes_instead_of_compensating() -> None:
    saga = Saga("routed", input=In)
    compensatable(saga, "a", on_failure="fallback")
    saga.step(name="main", kind=StepKind.PIVOT, then=END)(lambda ctx: "main")
    saga.step(name="fallback", kind=StepKind.PIVOT)(lambda ctx: "fallback")
    with pytest.raises(Exception, match="more than one pivot"):
        compile_saga(saga)
    saga = Saga("routed", input=In)
    compensatable(saga, "a")
    compensatable(saga, "b", on_failure="fallback")
    saga.step(name="main", kind=StepKind.PIVOT, then=END)(lambda ctx: "main")
    saga.step(
        name="fallback", kind=StepKind.RETRIABLE, retry=Retry(max_attempts=2), timeout=SECOND
    )(lambda ctx: "fallback")
    with SagaTestEnvironment(saga) as env:
        env.fail("b", non_retryable=True)
        wf = env.start(In())
        assert env.result(wf) == {"a": "a", "fallback": "fallback"}
        assert env.compensated(wf) == []


def test_a_branch_choosing_an_undeclared_target_is_refused() -> None:
    saga = Saga("badbranch", input=In)
    compensatable(saga, "a")

    @saga.branch(targets=["b"])
    def choose(view: object) -> str:
        return "a"

    compensatable(saga, "b")
    with SagaTestEnvironment(saga) as env, pytest.raises(UnapplicableEventError, match="chose 'a'"):
        env.start(In())


def test_timers_of_many_workflows_fire_in_due_order() -> None:
    saga = Saga("sleepy", input=In)
    compensatable(saga, "a")
    saga.sleep("nap", timedelta(minutes=5))
    with SagaTestEnvironment(saga) as env:
        first = env.start(In())
        env.advance(timedelta(minutes=2))
        second = env.start(In())
        env.advance(timedelta(minutes=3))
        assert env.status(first).status is WorkflowStatus.COMPLETED
        assert env.status(second).status is WorkflowStatus.RUNNING
        env.advance(timedelta(minutes=2))
        assert env.status(second).updated_ms - env.status(first).updated_ms == 120_000


def test_cancel_while_compensating_and_terminate_of_an_ended_workflow_are_ignored() -> None:
    saga = Saga("ignored", input=In)
    compensatable(saga, "a")
    saga.step(name="boom", kind=StepKind.PIVOT)(lambda ctx: None)
    with SagaTestEnvironment(saga) as env:
        env.fail("boom", non_retryable=True)
        env.time_out("a", compensation=True, attempts=[1])
        wf = env.start(In())
        assert env.status(wf).status is WorkflowStatus.COMPENSATING
        env.cancel(wf)
        assert env.history(wf)[-1].type is EventType.ANSWER_IGNORED
        env.run_until_complete(wf)
        env.terminate(wf)
        ignored = env.history(wf)[-1]
        assert ignored.type is EventType.ANSWER_IGNORED
        assert ignored.name == "terminate"
        assert env.status(wf).status is WorkflowStatus.COMPENSATED


class Go(BaseModel):
    n: int = 0


def test_a_wait_without_timeout_shows_in_the_status() -> None:
    waits = Saga("waits_forever", input=Go, version=1)
    waits.wait_for("go_ahead", signal="go")
    with SagaTestEnvironment(waits) as env:
        wf = env.start(Go())
        assert env.status(wf).current_steps == ("go_ahead",)
        env.signal(wf, "go", {"n": 1})
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.status(wf).current_steps == ()
