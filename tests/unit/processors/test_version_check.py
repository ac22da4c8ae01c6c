"""The pure parts of the worker's start-up version check."""

from __future__ import annotations

from pydantic import BaseModel

from processors.version_check import MissingVersionsError, lacking
from sagas import Saga, StepContext, StepKind
from sagas.engine.versions import compile_versions
from sagas.errors import SagaError


class _Job(BaseModel):
    job_id: str


def _saga(version: int) -> Saga[_Job]:
    saga = Saga("jobs", input=_Job, version=version)

    @saga.step(kind=StepKind.PIVOT)
    def work(ctx: StepContext[_Job]) -> None:
        """Do the job."""

    return saga


def test_lacking_names_only_versions_not_deployed_with_workflows_in_flight() -> None:
    versions = compile_versions([_saga(2), _saga(3)])
    assert lacking(versions, {1: 4, 2: 7, 3: 1, 5: 0}) == {1: 4}
    assert lacking(versions, {2: 7}) == {}
    assert lacking(versions, {}) == {}


def test_error_names_each_missing_version_its_count_and_what_is_deployed() -> None:
    error = MissingVersionsError("jobs", {3: 2, 1: 12}, (4,))
    assert isinstance(error, SagaError)
    assert error.missing == {1: 12, 3: 2}
    assert error.deployed == (4,)
    assert error.saga == "jobs"
    assert error.non_retryable
    assert str(error) == (
        "12 workflow(s) on version 1, 2 workflow(s) on version 3 still in flight, but this "
        "worker runs only version(s) 4; deploy those versions beside the new one until their "
        "workflows end (saga=jobs)"
    )
