"""Durations and deadlines taken from data: checked, computed once, recorded, replayed."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind, WorkflowView
from sagas.engine import compile_saga
from sagas.errors import DefinitionError
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment


class Job(BaseModel):
    minutes: int = 5
    at_ms: int = 0


UNDONE: list[str] = []


def _saga(**sleep: Any) -> Saga[Job]:
    saga = Saga("due", input=Job)

    @saga.step
    def reserve(ctx: StepContext[Job]) -> None:
        return None

    @reserve.compensation
    def release(ctx: StepContext[Job]) -> None:
        UNDONE.append(ctx.workflow_id)

    if "until" in sleep:
        saga.sleep_until("pause", sleep["until"])
    else:
        saga.sleep("pause", sleep["duration"])

    @saga.step(kind=StepKind.PIVOT)
    def finish(ctx: StepContext[Job]) -> None:
        return None

    return saga


def _minutes(view: WorkflowView[Job]) -> timedelta:
    return timedelta(minutes=view.input.minutes)


def test_a_computed_sleep_is_recorded_and_not_computed_again_on_replay() -> None:
    calls: list[int] = []

    def minutes(view: WorkflowView[Job]) -> timedelta:
        calls.append(view.input.minutes)
        return timedelta(minutes=view.input.minutes)

    with SagaTestEnvironment(_saga(duration=minutes)) as env:
        wf = env.start(Job(minutes=7), workflow_id="w")
        started = next(e for e in env.history(wf) if e.type is EventType.TIMER_STARTED)
        assert started.due_ms == started.time_ms + 7 * 60_000
        env.advance(timedelta(minutes=7))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert calls == [7]
        env.replay(wf)
        assert calls == [7]


def test_sleep_until_a_moment_from_the_input_and_a_past_one_goes_on_at_once() -> None:
    def at(view: WorkflowView[Job]) -> datetime:
        return datetime.fromtimestamp(view.input.at_ms / 1000, UTC)

    with SagaTestEnvironment(_saga(until=at)) as env:
        later = env.now_ms + 3_600_000
        wf = env.start(Job(at_ms=later), workflow_id="later")
        env.advance(timedelta(minutes=59))
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.advance(timedelta(minutes=1))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        past = env.start(Job(at_ms=env.now_ms - 60_000), workflow_id="past")
        env.advance(timedelta(milliseconds=0))
        assert env.status(past).status is WorkflowStatus.COMPLETED


@pytest.mark.parametrize(
    ("duration", "error"),
    [
        (lambda view: 1 / 0, "ZeroDivisionError"),
        (lambda view: timedelta(seconds=-1), "InvalidDueTime"),
        (lambda view: timedelta(days=4000), "InvalidDueTime"),
        (lambda view: 30, "InvalidDueTime"),
    ],
)
def test_a_duration_function_that_raises_or_is_out_of_bounds_fails_and_compensates(
    duration: Any, error: str
) -> None:
    UNDONE.clear()
    with SagaTestEnvironment(_saga(duration=duration)) as env:
        wf = env.start(Job(), workflow_id="bad")
        status = env.status(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        assert status.failed_step == "pause"
        assert status.error is not None
        assert status.error.type == error
        assert status.error.non_retryable
        failed = [e for e in env.history(wf) if e.type is EventType.DECIDER_FAILED]
        assert [e.step for e in failed] == ["pause"]
    assert UNDONE == ["bad"]


def test_a_step_timeout_from_data_and_a_failing_one() -> None:
    saga = Saga("timed", input=Job)

    @saga.step(
        kind=StepKind.RETRIABLE,
        retry=Retry(max_attempts=2),
        timeout=lambda view: timedelta(minutes=view.input.minutes),
    )
    def work(ctx: StepContext[Job]) -> None:
        return None

    with SagaTestEnvironment(saga) as env:
        env.time_out("work", attempts=[1])
        wf = env.start(Job(minutes=2), workflow_id="t")
        scheduled = [e for e in env.history(wf) if e.type is EventType.STEP_SCHEDULED]
        assert scheduled[0].due_ms == scheduled[0].time_ms + 120_000
        env.advance(timedelta(minutes=2, seconds=1))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        bad = env.start(Job(minutes=-1), workflow_id="neg")
        assert env.status(bad).status is WorkflowStatus.FAILED
        assert env.status(bad).failed_step == "work"


def _step_saga(**options: Any) -> Saga[Job]:
    saga = Saga("wrong", input=Job)

    @saga.step(kind=StepKind.PIVOT, **options)
    def work(ctx: StepContext[Job]) -> None:
        return None

    return saga


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"heartbeat_timeout": timedelta(seconds=5)}, "heartbeat_timeout needs a timeout"),
        (
            {"timeout": timedelta(seconds=5), "heartbeat_timeout": timedelta(seconds=6)},
            "longer than the step's timeout",
        ),
        ({"timeout": timedelta(seconds=-5)}, "timeout must be positive"),
        ({"timeout": timedelta(days=5000)}, "at most 3653 days"),
        ({"timeout": "5s"}, "must be a datetime.timedelta"),
    ],
)
def test_the_compiler_names_saga_and_step_of_a_wrong_timeout(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message) as caught:
        compile_saga(_step_saga(**options))
    assert (caught.value.saga, caught.value.step) == ("wrong", "work")


async def _async_minutes(view: WorkflowView[Job]) -> timedelta:
    return timedelta(minutes=1)


@pytest.mark.parametrize(
    ("sleep", "message"),
    [
        ({"duration": timedelta(0)}, "must be positive"),
        ({"duration": _async_minutes}, "plain"),
        ({"until": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_the_compiler_refuses_a_wrong_sleep(sleep: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as caught:
        compile_saga(_saga(**sleep))
    assert (caught.value.saga, caught.value.step) == ("due", "pause")
