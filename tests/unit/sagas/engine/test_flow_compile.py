"""Continue-as-new checks, a child step's compensation, and a child start nobody answers."""

from datetime import timedelta

import pytest
from pydantic import BaseModel

from examples.bundle_saga import LEDGER, Bundle, Payment, payment
from examples.bundle_saga import saga as bundle
from sagas import DefinitionError, Saga, StepContext, WorkflowView
from sagas.engine import compile_saga
from sagas.engine.plan import timer_fired
from sagas.events import Event, EventType, Origin, WorkflowStatus
from sagas.testing import SagaTestEnvironment


class Counter(BaseModel):
    n: int = 0


class Other(BaseModel):
    x: int = 0


def test_continue_as_new_with_nothing_before_it_would_loop_and_is_refused() -> None:
    s = Saga("looping", input=Counter)
    s.continue_as_new("again", input=lambda view: Counter(n=view.input.n + 1))
    with pytest.raises(DefinitionError, match="would start the next at once") as error:
        compile_saga(s)
    assert (error.value.saga, error.value.step) == ("looping", "again")


def test_continue_as_new_returning_another_model_is_refused() -> None:
    s = Saga("wrong-input", input=Counter)
    s.sleep("pause", timedelta(seconds=1))

    def other(view: WorkflowView[Counter]) -> Other:
        return Other()

    s.continue_as_new("again", input=other)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="returns Other, not the saga's input Counter") as e:
        compile_saga(s)
    assert e.value.step == "again"


def test_continue_as_new_cannot_jump() -> None:
    s = Saga("jumping", input=Counter)
    s.sleep("pause", timedelta(seconds=1))
    node = s.continue_as_new("again", input=lambda view: Counter())
    s.sleep("later", timedelta(seconds=1))
    node.then = "later"
    with pytest.raises(DefinitionError, match="cannot have then=") as error:
        compile_saga(s)
    assert error.value.step == "again"


def test_a_hand_written_child_compensation_wins_over_the_childs_own() -> None:
    s = Saga("bundle", input=Bundle, version=2)
    pay = s.child("pay", saga=payment, input=lambda view: Payment(order_id="h1", amount_cents=1))

    @pay.compensation
    def credit_note(ctx: StepContext[Bundle]) -> None:
        LEDGER.append("credit note h1")

    @s.step
    def fail(ctx: StepContext[Bundle]) -> None:
        raise ValueError("no")

    @fail.compensation
    def nothing(ctx: StepContext[Bundle]) -> None: ...

    with SagaTestEnvironment(s, payment) as env:
        env.fail("fail", non_retryable=True)
        wf = env.start(Bundle(order_id="h1", amount_cents=1, sku="x"))
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPENSATED
        child = env.states[wf].steps["pay"].child or ""
        assert env.status(child).status is WorkflowStatus.COMPLETED  # not undone by itself
    assert [x for x in LEDGER if x.endswith("h1")] == [
        "authorize h1",
        "capture h1",
        "credit note h1",
    ]


def test_a_child_start_no_processor_answers_is_named_in_the_status() -> None:

    plan = compile_saga(bundle)
    start = Event(
        event_id="s1",
        workflow_id="b-1",
        saga="bundle",
        version=0,
        type=EventType.START_REQUESTED,
        origin=Origin.CLIENT,
        time_ms=0,
        payload=Bundle(order_id="n1", amount_cents=1, sku="x").model_dump_json(),
    )
    started = plan.handle(None, start, 0)
    assert [e.type for e in started.outbound] == [EventType.START_REQUESTED]
    state = started.state
    assert plan.status_record(state).current_steps == ("pay",)
    fired = plan.handle(state, timer_fired(state, "cs:pay", 30_000), 30_000)
    assert plan.status_record(fired.state).current_steps == (
        "pay (waiting for child saga payment: no processor answers)",
    )
    running = Event(
        event_id="r1",
        workflow_id="b-1",
        saga="bundle",
        version=1,
        type=EventType.CHILD_RUNNING,
        origin=Origin.PROCESSOR,
        time_ms=31_000,
        step="pay",
        name="b-1/pay",
    )
    answered = plan.handle(fired.state, running, 31_000)
    assert plan.status_record(answered.state).current_steps == ("pay",)
    assert answered.state.timers == {}


def test_a_child_answers_its_parent_when_its_processor_starts_it() -> None:

    with SagaTestEnvironment(bundle, payment) as env:
        wf = env.start(Bundle(order_id="a1", amount_cents=1, sku="x"))
        types = env.event_types(wf)
        assert types.index(EventType.CHILD_STARTED) < types.index(EventType.CHILD_RUNNING)
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPLETED
