from datetime import timedelta

from pydantic import BaseModel

from sagas import Saga, StepKind
from sagas.engine import compile_saga
from sagas.events import CommandKind, EventType, WorkflowStatus
from sagas.testing import Fault, MatrixCase, SagaTestEnvironment, failure_matrix
from sagas.testing.failure_matrix import _check


class In(BaseModel):
    n: int = 0


def make_saga() -> Saga[In]:
    saga = Saga("matrix", input=In)
    for name in ("a", "b"):
        saga.step(name=name, timeout=timedelta(seconds=1))(lambda ctx: None).compensation(
            lambda ctx: None
        )
    saga.step(name="p", kind=StepKind.PIVOT)(lambda ctx: None)
    return saga


def test_the_checker_flags_wrong_order_and_double_compensation() -> None:
    steps = compile_saga(make_saga()).steps
    wrong_order = MatrixCase(
        "p", Fault.NON_RETRYABLE, WorkflowStatus.COMPENSATED, ["a", "b"], ["a", "b"]
    )
    _check(wrong_order, steps, {})
    assert wrong_order.problems == ["'a' was compensated before 'b' though it completed earlier"]
    twice = MatrixCase("p", Fault.NON_RETRYABLE, WorkflowStatus.COMPENSATED, ["a", "b"], ["b", "a"])
    _check(twice, steps, {("a", CommandKind.COMPENSATE, 1): 2})
    assert twice.problems == ["compensate of 'a' attempt 1 ran 2 times"]
    missing = MatrixCase("p", Fault.TIME_OUT, WorkflowStatus.COMPENSATED, ["a", "b"], ["b"])
    _check(missing, steps, {})
    assert not missing.ok


def test_the_matrix_covers_every_step_and_fault() -> None:
    cases = failure_matrix(make_saga(), In())
    assert [(c.step, c.fault) for c in cases] == [
        ("a", Fault.NON_RETRYABLE),
        ("a", Fault.TIME_OUT),
        ("a", Fault.DELIVER_TWICE),
        ("b", Fault.NON_RETRYABLE),
        ("b", Fault.TIME_OUT),
        ("b", Fault.DELIVER_TWICE),
        ("p", Fault.NON_RETRYABLE),
        ("p", Fault.DELIVER_TWICE),
    ]
    assert all(c.ok for c in cases)
    by_case = {(c.step, c.fault): c for c in cases}
    assert by_case["p", Fault.NON_RETRYABLE].compensated == ["b", "a"]
    assert by_case["b", Fault.TIME_OUT].compensated == ["a"]


def test_a_duplicated_compensation_answer_is_applied_once() -> None:
    with SagaTestEnvironment(make_saga()) as env:
        env.fail("p", non_retryable=True)
        env.deliver_twice("a", compensation=True)
        wf = env.start(In())
        assert env.compensated(wf) == ["b", "a"]
        assert env.executed(wf, CommandKind.COMPENSATE) == ["b", "a"]
        assert env.event_types(wf).count(EventType.ANSWER_IGNORED) == 1
        assert env.replay(wf).status is WorkflowStatus.COMPENSATED
