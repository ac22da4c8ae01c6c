"""The runs a workflow continued as new from stay describable for the retention period of
ended workflows, then are removed as an ended workflow is: in the test kit, on the
processor's own batch path and virtual clock."""

from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind, WorkflowView
from sagas.events import WorkflowStatus
from sagas.testing import SagaTestEnvironment

DAY = timedelta(days=1)


class Month(BaseModel):
    month: int = 1
    last: int = 4


def monthly(retention: timedelta | None) -> Saga[Month]:
    saga = Saga("monthly-runs", input=Month, retention=retention)

    @saga.step(kind=StepKind.RETRIABLE, retry=Retry(max_attempts=2), timeout=timedelta(minutes=1))
    def bill(ctx: StepContext[Month]) -> int:
        return ctx.input.month * 100

    saga.sleep("month_passes", 30 * DAY)

    @saga.branch(targets=("next_month", "close"))
    def more(view: WorkflowView[Month]) -> str:
        return "close" if view.input.month >= view.input.last else "next_month"

    saga.continue_as_new("next_month", input=lambda view: Month(month=view.input.month + 1))

    @saga.step(kind=StepKind.RETRIABLE, retry=Retry(max_attempts=2), timeout=timedelta(minutes=1))
    def close(ctx: StepContext[Month]) -> None:
        return None

    return saga


def months(env: SagaTestEnvironment, wf: str) -> list[int]:
    return [Month.model_validate_json(run.input).month for run in env.runs(wf)]


def test_an_earlier_run_is_kept_for_the_retention_period_then_removed() -> None:
    with SagaTestEnvironment(monthly(retention=45 * DAY)) as env:
        wf = env.start(Month(), workflow_id="acct-1")
        first = env.status(wf).run_id
        assert env.runs(wf) == []
        env.advance(30 * DAY)
        [ended] = env.runs(wf)
        # The run as it ended: its id, input and results, next to the run that followed.
        assert ended.run_id == first == env.status(wf).previous_run_id
        assert ended.steps["bill"].result == "100"
        assert ended.updated_ms == env.now_ms
        env.advance(30 * DAY)
        assert months(env, wf) == [2, 1]  # latest first
        env.advance(15 * DAY)  # day 75: month 1 ended 45 days ago
        assert months(env, wf) == [2]
        env.advance(15 * DAY)  # day 90: month 3 ends; month 2's retention runs to day 105
        assert months(env, wf) == [3, 2]
        status = env.run_until_complete(wf)  # day 120, after month 4's sleep
        assert status.status is WorkflowStatus.COMPLETED
        assert months(env, wf) == [3]
        env.advance(150 * DAY)
        # The last run ended at day 120 and went at day 165, as any ended workflow does.
        assert months(env, wf) == []
        assert wf not in env.states


def test_without_retention_the_runs_are_kept_as_ended_workflows_are() -> None:
    with SagaTestEnvironment(monthly(retention=None)) as env:
        wf = env.start(Month(), workflow_id="acct-2")
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPLETED
        env.advance(365 * DAY)
        assert months(env, wf) == [3, 2, 1]
        assert wf in env.states
