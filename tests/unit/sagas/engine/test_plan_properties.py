"""Property: for any saga shape and failure point, exactly the completed compensatable
steps are compensated, each once, latest first (a parallel group as one wave)."""

import itertools
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind
from sagas.events import CommandKind, EventType, WorkflowStatus
from sagas.testing import Fault, SagaTestEnvironment


class In(BaseModel):
    n: int = 0


def noop(ctx: StepContext[In]) -> None:
    return None


Shape = list[int]  # 0 = a single step, k > 0 = a parallel group of k steps


def build(shape: Shape, pivot: bool, retriables: int) -> tuple[Saga[In], dict[str, str | None]]:
    saga = Saga("prop", input=In)
    group_of: dict[str, str | None] = {}
    retry = Retry(max_attempts=2, initial_interval=timedelta(seconds=1))
    for i, size in enumerate(shape):
        if size == 0:
            saga.step(name=f"s{i}", retry=retry, timeout=timedelta(seconds=5))(noop).compensation(
                noop
            )
            group_of[f"s{i}"] = None
            continue
        with saga.parallel(f"g{i}"):
            for j in range(size):
                name = f"g{i}m{j}"
                saga.step(name=name, retry=retry, timeout=timedelta(seconds=5))(noop).compensation(
                    noop
                )
                group_of[name] = f"g{i}"
    if pivot:
        saga.step(name="pivot", kind=StepKind.PIVOT, timeout=timedelta(seconds=5))(noop)
        group_of["pivot"] = None
    for k in range(retriables):
        saga.step(name=f"r{k}", kind=StepKind.RETRIABLE, retry=retry, timeout=timedelta(seconds=5))(
            noop
        )
        group_of[f"r{k}"] = None
    return saga, group_of


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 3), min_size=1, max_size=5),
    pivot=st.booleans(),
    retriables=st.integers(0, 2),
    data=st.data(),
)
def test_compensations_are_the_completed_steps_in_reverse(
    shape: Shape, pivot: bool, retriables: int, data: st.DataObject
) -> None:
    saga, group_of = build(shape, pivot, retriables)
    steps = list(group_of)
    failing = data.draw(st.sampled_from(steps), label="failing step")
    fault = data.draw(st.sampled_from([Fault.NON_RETRYABLE, Fault.FAIL, Fault.TIME_OUT]))
    doubled = data.draw(st.sets(st.sampled_from(steps)), label="answers delivered twice")
    with SagaTestEnvironment(saga) as env:
        env.inject(failing, fault)
        for step in doubled - {failing}:
            env.deliver_twice(step)
            env.deliver_twice(step, compensation=True)
        wf = env.start(In())
        status = env.run_until_complete(wf).status
        succeeded = [e.step or "" for e in env.history(wf) if e.type is EventType.STEP_SUCCEEDED]
        completed = list(dict.fromkeys(succeeded))
        compensated = env.compensated(wf)
        runs = [(x.step, x.kind) for x in env.executions]

    forward = [s for s in completed if s == "pivot" or s.startswith("r")]
    if forward or failing.startswith("r"):
        assert status is WorkflowStatus.FAILED
        assert compensated == []
    else:
        assert status is WorkflowStatus.COMPENSATED
        assert sorted(compensated) == sorted(completed)
        position = {s: i for i, s in enumerate(completed)}
        for a, b in itertools.pairwise(compensated):
            if group_of[a] is None or group_of[a] != group_of[b]:
                assert position[a] > position[b], (a, b, completed, compensated)
    assert failing not in completed
    compensations_run = [s for s, kind in runs if kind is CommandKind.COMPENSATE]
    assert sorted(compensations_run) == sorted(compensated)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(0, 3), min_size=1, max_size=4),
    pivot=st.booleans(),
    retriables=st.integers(0, 2),
    data=st.data(),
)
def test_cancel_at_any_point_undoes_exactly_what_completed_unless_committed(
    shape: Shape, pivot: bool, retriables: int, data: st.DataObject
) -> None:
    saga, group_of = build(shape, pivot, retriables)
    steps = list(group_of)
    slow = data.draw(st.sampled_from(steps), label="step in flight at the cancel")
    with SagaTestEnvironment(saga) as env:
        env.time_out(slow, attempts=[1])
        wf = env.start(In())
        env.cancel(wf, "stop")
        status = env.run_until_complete(wf).status
        history = env.history(wf)
        succeeded = [e.step or "" for e in history if e.type is EventType.STEP_SUCCEEDED]
        compensated = env.compensated(wf)
    cancel_at = next(i for i, e in enumerate(history) if e.type is EventType.CANCEL_REQUESTED)
    before_cancel = [
        e.step or "" for e in history[:cancel_at] if e.type is EventType.STEP_SUCCEEDED
    ]
    committed_before_cancel = any(s == "pivot" or s.startswith("r") for s in before_cancel)
    refused = [e for e in history if e.type is EventType.ANSWER_IGNORED and e.name == "cancel"]
    assert bool(refused) == committed_before_cancel
    if refused:
        assert status is WorkflowStatus.COMPLETED
        assert compensated == []
    else:
        assert status is WorkflowStatus.CANCELLED
        assert sorted(compensated) == sorted(succeeded)
        position = {s: i for i, s in enumerate(succeeded)}
        for a, b in itertools.pairwise(compensated):
            if group_of[a] is None or group_of[a] != group_of[b]:
                assert position[a] > position[b]
