"""Search attributes set by steps (``ctx.set_search_attribute``) in the test kit: checked
against the declarations, applied with a succeeded attempt only, rebuilt by replay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind, WorkflowView
from sagas.errors import DefinitionError
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment, dump_history, load_history
from sagas.visibility import SearchAttribute

QUICK = Retry(max_attempts=3, initial_interval=timedelta(seconds=1))


class Order(BaseModel):
    customer_id: str = "c-1"
    quantity: int = 3
    undo_sets_attribute: bool = False


def priced_saga(attribute: str = "order_total", value: object = None) -> Saga[Order]:
    """Reserve, then price: the price step sets ``attribute`` (its total by default)."""
    saga = Saga(
        "priced",
        input=Order,
        search_attributes=[
            SearchAttribute("customer_id", str, lambda order: order.customer_id),
            SearchAttribute("order_total", int),
            SearchAttribute("discounted", bool),
        ],
    )

    @saga.step
    def reserve(ctx: StepContext[Order]) -> str:
        return "r-1"

    @reserve.compensation
    def release(ctx: StepContext[Order]) -> None:
        if ctx.input.undo_sets_attribute:
            ctx.set_search_attribute("discounted", True)

    @saga.step(kind=StepKind.PIVOT, retry=QUICK)
    def price(ctx: StepContext[Order]) -> int:
        total = ctx.input.quantity * 40
        ctx.set_search_attribute(attribute, total if value is None else value)  # type: ignore[arg-type]
        return total

    return saga


def test_a_value_a_step_sets_is_listed_with_the_input_attributes_and_replayed() -> None:
    with SagaTestEnvironment(priced_saga()) as env:
        wf = env.start(Order(quantity=3))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.search_attributes(wf) == {"customer_id": "c-1", "order_total": 120}
        answer = next(e for e in env.history(wf) if e.type is EventType.STEP_SUCCEEDED
                      and e.step == "price")  # fmt: skip
        assert answer.search_attributes == '{"order_total":120}'
        assert env.replay(wf).search_attributes == {"order_total": 120}
        recorded = dump_history(env.history(wf))
        assert recorded.count('"search_attributes"') == 1  # written only where set
        assert load_history(recorded) == env.history(wf)


def test_a_value_set_by_a_failed_attempt_is_not_applied() -> None:
    saga = priced_saga()
    runs: list[int] = []

    @saga.step(kind=StepKind.RETRIABLE, retry=QUICK, timeout=timedelta(seconds=30))
    def confirm(ctx: StepContext[Order]) -> None:
        runs.append(ctx.attempt)
        ctx.set_search_attribute("order_total", 999_999 if ctx.attempt == 1 else 5)
        if ctx.attempt == 1:
            raise ConnectionError("confirmation service down")

    with SagaTestEnvironment(saga) as env:
        wf = env.start(Order())
        assert env.search_attributes(wf)["order_total"] == 120  # attempt 1's value is gone
        env.run_until_complete(wf)
        assert runs == [1, 2]
        assert env.search_attributes(wf)["order_total"] == 5  # the later step's value wins
        failed = next(e for e in env.history(wf) if e.type is EventType.STEP_FAILED)
        assert failed.search_attributes is None
        env.replay(wf)


@pytest.mark.parametrize(
    ("attribute", "value", "problem"),
    [
        ("order_totl", 120, "search attribute 'order_totl' is not declared"),
        ("customer_id", "c-9", "'customer_id' is read from the input, so steps cannot set it"),
        ("order_total", "120", "'order_total' takes int values: got str '120'"),
        ("order_total", True, "'order_total' takes int values: got bool True"),
    ],
)
def test_an_undeclared_name_or_a_wrong_type_fails_the_attempt_naming_saga_step_and_attribute(
    attribute: str, value: object, problem: str
) -> None:
    with SagaTestEnvironment(priced_saga(attribute, value)) as env:
        wf = env.start(Order())
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPENSATED
        failures = [e for e in env.history(wf) if e.type is EventType.STEP_FAILED]
        assert len(failures) == QUICK.max_attempts  # an error of the action, retried as one
        assert failures[0].error is not None
        assert failures[0].error.type == "SagaError"
        message = failures[0].error.message
        assert message.startswith("saga 'priced', step 'price': ")
        assert problem in message
        assert env.search_attributes(wf) == {"customer_id": "c-1"}


def test_a_compensation_cannot_set_search_attributes() -> None:
    saga = priced_saga(value="not a number")  # price fails for good, reserve is undone
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Order(undo_sets_attribute=True))
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.FAILED
        comp = next(e for e in env.history(wf) if e.type is EventType.COMPENSATION_FAILED)
        assert comp.error is not None
        assert "set by a step's action, not by its compensation" in comp.error.message
        assert "discounted" not in env.search_attributes(wf)


def test_a_step_set_attribute_declares_no_input_function() -> None:
    bad = Saga(
        "bad",
        input=Order,
        search_attributes=[SearchAttribute("total", int, "quantity")],  # type: ignore[arg-type]
    )

    @bad.step(kind=StepKind.PIVOT)
    def only(ctx: StepContext[Order]) -> None:
        return None

    with pytest.raises(DefinitionError, match="from_input must be a function of the input"):
        SagaTestEnvironment(bad)


class Month(BaseModel):
    account: str = "a-1"
    month: int = 1


def monthly_saga() -> Saga[Month]:
    """Each month a run; the first marks the tier, the third upgrades it, the fourth ends."""
    saga = Saga(
        "monthly",
        input=Month,
        search_attributes=[
            SearchAttribute("month", int, lambda m: m.month),
            SearchAttribute("tier", str),
        ],
    )

    @saga.step(kind=StepKind.RETRIABLE, retry=QUICK, timeout=timedelta(minutes=1))
    def bill(ctx: StepContext[Month]) -> int:
        if ctx.input.month == 1:
            ctx.set_search_attribute("tier", "basic")
        elif ctx.input.month == 3:
            ctx.set_search_attribute("tier", "gold")
        return ctx.input.month

    saga.sleep("month_passes", timedelta(days=30))

    @saga.branch(targets=("next_month", "done"))
    def more(view: WorkflowView[Month]) -> str:
        return "done" if view.input.month >= 4 else "next_month"

    saga.continue_as_new("next_month", input=lambda view: Month(month=view.input.month + 1))

    @saga.step(kind=StepKind.RETRIABLE, retry=QUICK, timeout=timedelta(minutes=1))
    def done(ctx: StepContext[Month]) -> None:
        return None

    return saga


def test_attributes_steps_set_carry_into_the_next_run_until_a_step_sets_them_anew() -> None:
    with SagaTestEnvironment(monthly_saga()) as env:
        wf = env.start(Month(), workflow_id="acct-1")
        assert env.search_attributes(wf) == {"month": 1, "tier": "basic"}
        env.advance(timedelta(days=30))
        assert env.states[wf].previous_run_id is not None  # a new run, the label kept
        assert env.search_attributes(wf) == {"month": 2, "tier": "basic"}
        env.advance(timedelta(days=30))
        assert env.search_attributes(wf) == {"month": 3, "tier": "gold"}
        assert env.run_until_complete(wf).status is WorkflowStatus.COMPLETED
        assert env.search_attributes(wf) == {"month": 4, "tier": "gold"}
        assert env.event_types(wf).count(EventType.CONTINUED_AS_NEW) == 3
        assert env.replay(wf) == env.states[wf]
