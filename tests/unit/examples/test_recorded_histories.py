"""Recorded histories of the examples, replayed against their current definitions."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from examples import (
    billing_saga,
    expense_saga,
    onboarding_saga,
    order_saga,
    signing_saga,
    trip_saga,
)
from sagas import Saga
from sagas.engine import compile_saga, compile_versions
from sagas.events import CommandKind, WorkflowStatus
from sagas.testing import (
    HistoryMismatchError,
    dump_history,
    load_history,
    replay_history,
)

HISTORIES = Path(__file__).parent / "histories"
SAGAS: dict[str, Saga[Any]] = {
    "order": order_saga.saga,
    "trip": trip_saga.saga,
    "signing": signing_saga.saga,
    "expense": expense_saga.saga,
    "billing": billing_saga.saga,
    "onboarding": onboarding_saga.saga,
}
FINAL = {
    "order_completed": WorkflowStatus.COMPLETED,
    "order_compensated": WorkflowStatus.COMPENSATED,
    "trip_hotel_failed": WorkflowStatus.COMPENSATED,
    "signing_timed_out": WorkflowStatus.COMPLETED,
    "signing_signed_late": WorkflowStatus.COMPLETED,
    "expense_approved_early": WorkflowStatus.COMPLETED,
    "billing_cancelled": WorkflowStatus.COMPLETED,
    "onboarding_cancel_refused": WorkflowStatus.COMPLETED,
}


@pytest.mark.parametrize("name", sorted(FINAL))
def test_each_recorded_history_replays_to_the_same_decisions(name: str) -> None:
    text = (HISTORIES / f"{name}.jsonl").read_text()
    events = load_history(text)
    assert dump_history(events) == text
    state = replay_history(SAGAS[name.split("_")[0]], events)
    assert state.status is FINAL[name]


def test_a_changed_timeout_is_caught() -> None:
    changed = Saga("order", input=order_saga.OrderInput, version=1)
    original = compile_saga(order_saga.saga).steps
    functions = compile_versions(order_saga.saga).functions[1]
    for name, spec in original.items():
        timeout = timedelta(milliseconds=spec.timeout_ms or 1)
        if name == "reserve_inventory":
            timeout = timedelta(minutes=5)
        step = changed.step(
            name=name, kind=spec.kind, retry=spec.retry, timeout=timeout, queue=spec.queue
        )(functions.action(name, CommandKind.ACTION).fn)
        if spec.compensation is not None:
            undo = functions.action(name, CommandKind.COMPENSATE).fn
            step.compensation(undo, retry=spec.compensation.retry)
    events = load_history((HISTORIES / "order_completed.jsonl").read_text())
    with pytest.raises(
        HistoryMismatchError,
        match=r"event 4 of the history, \(type='step_scheduled', step='reserve_inventory'",
    ) as info:
        replay_history(changed, events)
    assert info.value.step == "reserve_inventory"
