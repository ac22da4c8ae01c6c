"""The fold takes the search attributes of a live step_succeeded: declared for steps, of
the declared type; nothing from a failed, a stale or a hand-written bad answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind
from sagas.engine.versions import compile_versions
from sagas.events import Event, EventType
from sagas.testing import SagaTestEnvironment
from sagas.visibility import SearchAttribute


class Order(BaseModel):
    customer_id: str = "c-1"


saga = Saga(
    "fold-attrs",
    input=Order,
    search_attributes=[
        SearchAttribute("customer_id", str, lambda order: order.customer_id),
        SearchAttribute("total", int),
        SearchAttribute("ratio", float),
    ],
)


@saga.step(retry=Retry(max_attempts=2, initial_interval=timedelta(seconds=1)))
def price(ctx: StepContext[Order]) -> int:
    ctx.set_search_attribute("total", 120)
    ctx.set_search_attribute("ratio", 2)  # a whole number is a float's value too
    return 120


@price.compensation
def unprice(ctx: StepContext[Order]) -> None:
    return None


@saga.step(kind=StepKind.PIVOT)
def ship(ctx: StepContext[Order]) -> None:
    ctx.set_search_attribute("total", 130)


PLAN = compile_versions(saga).newest


def _history() -> list[Event]:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Order(), workflow_id="wf-1")
        return env.history(wf)


def _answer(history: list[Event], step: str) -> int:
    return next(
        i for i, e in enumerate(history) if e.type is EventType.STEP_SUCCEEDED and e.step == step
    )


def test_each_succeeded_step_sets_its_values_and_a_later_one_overwrites() -> None:
    history = _history()
    price_answer = history[_answer(history, "price")]
    assert price_answer.search_attributes == '{"total":120,"ratio":2.0}'
    at_price = PLAN.fold(history[: _answer(history, "price") + 1])
    assert at_price is not None
    assert at_price.search_attributes == {"total": 120, "ratio": 2.0}
    state = PLAN.fold(history)
    assert state is not None
    assert state.search_attributes == {"total": 130, "ratio": 2.0}
    assert type(state.search_attributes["ratio"]) is float


@pytest.mark.parametrize(
    "carried",
    [
        '{"total":"120"}',
        '{"total":true}',
        '{"total":1.5}',
        '{"customer_id":"c-9"}',
        '{"unknown":1}',
        '{"ratio":NaN}',
        "[1,2]",
        "not json",
    ],
)
def test_a_hand_written_answer_with_bad_values_sets_none_of_them(carried: str) -> None:
    history = _history()
    i = _answer(history, "price")
    history[i] = replace(history[i], search_attributes=carried)
    i = _answer(history, "ship")
    history[i] = replace(history[i], search_attributes=None)
    state = PLAN.fold(history)
    assert state is not None
    assert state.search_attributes == {}


def test_a_failed_answer_and_a_stale_answer_set_nothing() -> None:
    history = _history()
    i = _answer(history, "price")
    succeeded = history[i]
    failed = replace(
        succeeded,
        type=EventType.STEP_FAILED,
        event_id="hand-failed",
        search_attributes='{"total":7}',
    )
    stale = replace(succeeded, event_id="late", attempt=0, search_attributes='{"total":9}')
    state = PLAN.fold([*history[:i], stale, *history[i:]])
    assert state is not None
    assert state.search_attributes == {"total": 130, "ratio": 2.0}
    before = PLAN.fold(history[:i])
    assert before is not None
    PLAN.fold_into(before, failed)
    assert before.search_attributes == {}
