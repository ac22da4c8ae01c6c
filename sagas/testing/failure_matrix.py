"""The failure matrix: every step x {fails, times out, answer delivered twice}, checked.

For each case it runs the saga in a fresh :class:`SagaTestEnvironment` and checks,
from the history alone, that the compensations are exactly the completed
compensatable steps (none after the point of no return), latest first (a
parallel group's steps in any order among themselves), each run once, and that
a duplicated answer changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sagas.definition import Saga, StepKind
from sagas.engine.nodes import StepSpec
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import CommandKind, EventType, WorkflowStatus
from sagas.testing.environment import Fault, SagaTestEnvironment

MATRIX_FAULTS = (Fault.NON_RETRYABLE, Fault.TIME_OUT, Fault.DELIVER_TWICE)


@dataclass(slots=True)
class MatrixCase:
    """The outcome of one case of the failure matrix."""

    step: str
    fault: Fault
    status: WorkflowStatus
    completed: list[str]
    compensated: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check of this case held."""
        return not self.problems


def failure_matrix(
    saga: Saga[Any] | SagaVersions,
    input: BaseModel,
    *,
    signals: Mapping[str, Any] | None = None,
    others: Iterable[Saga[Any] | SagaVersions] = (),
) -> list[MatrixCase]:
    """Run and check every case of the matrix for the newest version of ``saga``.

    ``signals`` answers the saga's waits (signal name -> payload) so that every
    step can be reached; ``others`` are child sagas it starts. A time-out case
    is run only for steps with a timeout (without one, no attempt can time out).
    """
    plan = compile_versions(saga).newest
    cases: list[MatrixCase] = []
    for spec in plan.steps.values():
        if spec.child_saga is not None:
            continue
        for fault in MATRIX_FAULTS:
            if fault is Fault.TIME_OUT and spec.timeout_ms is None:
                continue
            cases.append(_run_case(saga, input, spec, fault, signals or {}, others, plan.steps))
    return cases


def assert_failure_matrix(
    saga: Saga[Any] | SagaVersions,
    input: BaseModel,
    *,
    signals: Mapping[str, Any] | None = None,
    others: Iterable[Saga[Any] | SagaVersions] = (),
) -> list[MatrixCase]:
    """Run the failure matrix and raise ``AssertionError`` listing every failed check."""
    cases = failure_matrix(saga, input, signals=signals, others=others)
    problems = [f"{c.step} x {c.fault.value}: {p}" for c in cases for p in c.problems]
    if problems:
        raise AssertionError("failure matrix:\n" + "\n".join(problems))
    return cases


def _run_case(
    saga: Saga[Any] | SagaVersions,
    input: BaseModel,
    target: StepSpec,
    fault: Fault,
    signals: Mapping[str, Any],
    others: Iterable[Saga[Any] | SagaVersions],
    steps: Mapping[str, StepSpec],
) -> MatrixCase:
    with SagaTestEnvironment(saga, *others, auto_signals=signals) as env:
        env.inject(target.name, fault)
        workflow_id = env.start(input, workflow_id=f"matrix-{target.name}-{fault.value}")
        status = env.run_until_complete(workflow_id).status
        history = env.history(workflow_id)
        completed = [
            e.step or ""
            for i, e in enumerate(history)
            if e.type is EventType.STEP_SUCCEEDED
            and not (
                i + 1 < len(history)
                and history[i + 1].type is EventType.ANSWER_IGNORED
                and history[i + 1].cause == e.event_id
            )
        ]
        compensated = env.compensated(workflow_id)
        case = MatrixCase(target.name, fault, status, completed, compensated)
        runs: dict[tuple[str, CommandKind, int], int] = {}
        for x in env.executions:
            if x.workflow_id == workflow_id:
                runs[x.step, x.kind, x.attempt] = runs.get((x.step, x.kind, x.attempt), 0) + 1
        _check(case, steps, runs)
        return case


def _check(
    case: MatrixCase,
    steps: Mapping[str, StepSpec],
    runs: Mapping[tuple[str, CommandKind, int], int],
) -> None:
    problems = case.problems
    for key, count in runs.items():
        if count != 1:
            problems.append(f"{key[1].value} of {key[0]!r} attempt {key[2]} ran {count} times")
    if len(set(case.completed)) != len(case.completed):
        problems.append(f"a step completed twice: {case.completed}")
    if len(set(case.compensated)) != len(case.compensated):
        problems.append(f"a step was compensated twice: {case.compensated}")
    undoable = [s for s in case.completed if steps[s].compensatable]
    point_of_no_return = any(not steps[s].compensatable for s in case.completed) or (
        steps[case.step].kind is StepKind.RETRIABLE
    )
    if case.fault is Fault.DELIVER_TWICE or case.status is WorkflowStatus.COMPLETED:
        if case.compensated:
            problems.append(f"compensated {case.compensated} though nothing failed for good")
        return
    expected = [] if point_of_no_return else undoable
    if sorted(case.compensated) != sorted(expected):
        problems.append(f"compensated {case.compensated}, expected exactly {expected[::-1]}")
        return
    position = {step: i for i, step in enumerate(case.completed)}
    for earlier, later in zip(case.compensated, case.compensated[1:], strict=False):
        same_group = steps[earlier].group is not None and steps[earlier].group == steps[later].group
        if not same_group and position[earlier] < position[later]:
            problems.append(
                f"{earlier!r} was compensated before {later!r} though it completed earlier"
            )
