"""1,000 expense approvals whose signal comes before the wait, after it, or never."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from sagas.events import CommandKind, Event, EventType, StatusRecord, WorkflowStatus
from sagas.events import idempotency_key as key_of
from tests.integration.long_running import approval_saga
from tests.integration.long_running.conftest import Runtime
from tests.integration.long_running.event_log import read_events

WORKFLOWS = 1000
TIMINGS = ("before", "after", "never")


@dataclass(frozen=True, slots=True)
class Plan:
    """What the test does to one workflow and where that must lead it."""

    timing: str
    answer: str
    approver: str

    @property
    def last_step(self) -> str:
        if self.timing == "never":
            return "escalate"
        return "reimburse" if self.answer == "approved" else "notify_rejected"

    @property
    def effect(self) -> str:
        if self.timing == "never":
            return "escalated"
        verb = "paid" if self.answer == "approved" else "rejected"
        return f"{verb} by {self.approver}"


def _index(events: list[Event], type_: EventType) -> int:
    return next(i for i, e in enumerate(events) if e.type is type_)


def _wait_all(
    statuses: Callable[[], dict[str, StatusRecord]],
    wids: set[str],
    done: Callable[[StatusRecord], bool],
    timeout: float,
) -> dict[str, StatusRecord]:
    deadline = time.monotonic() + timeout
    while True:
        current = statuses()
        if all(w in current and done(current[w]) for w in wids) or time.monotonic() > deadline:
            return current
        time.sleep(0.3)


def test_every_approval_ends_on_the_branch_its_signal_chose(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(approval_saga.saga)
    client, saga = runtime.client, approval_saga.saga
    approval_saga.EFFECTS.clear()
    plans = {
        f"exp-{i:04d}": Plan(
            timing=TIMINGS[i % 3],
            answer="approved" if (i // 3) % 2 == 0 else "rejected",
            approver=f"boss-{i}",
        )
        for i in range(WORKFLOWS)
    }
    for wid, plan in plans.items():
        claim = approval_saga.Claim(expense_id=wid, amount_cents=100)
        client.start(saga, claim, workflow_id=wid, wait=False)
        if plan.timing == "before":
            # Sent right behind the start: it is in the log before the submit step can
            # have answered, so it waits for the wait (checked against the log below).
            decision = approval_saga.Decision(approver=plan.approver)
            client.signal(saga, wid, plan.answer, decision, check=False)
    client.flush()

    pending = {wid for wid, plan in plans.items() if plan.timing == "after"}
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        current = client.statuses(saga)
        waiting = {w for w in pending if w in current and "decision" in current[w].current_steps}
        for wid in sorted(waiting):
            decision = approval_saga.Decision(approver=plans[wid].approver)
            client.signal(saga, wid, plans[wid].answer, decision, check=False)
        pending -= waiting
        time.sleep(0.2)
    assert not pending, f"{len(pending)} workflows never reached their wait"
    client.flush()

    final = _wait_all(
        lambda: client.statuses(saga), set(plans), lambda r: r.status.is_final, timeout=90
    )
    not_done = [
        w for w in plans if w not in final or final[w].status is not WorkflowStatus.COMPLETED
    ]
    assert not not_done, (
        f"{len(not_done)} did not complete, e.g. {[final.get(w) for w in not_done[:3]]}"
    )

    events = read_events(runtime.kafka, saga.name)
    for wid, plan in plans.items():
        history = events[wid]
        types = [e.type for e in history]
        result = json.loads(final[wid].result or "{}")
        assert plan.last_step in result, (wid, plan, result)
        if plan.timing == "never":
            assert EventType.SIGNAL not in types, wid
            fired = [e for e in history if e.type is EventType.TIMER_FIRED]
            assert [e.name for e in fired] == ["w:decision"], (wid, types)
            assert EventType.BRANCH_TAKEN not in types, (wid, types)
        else:
            assert result[plan.last_step] == plan.approver, (wid, result)
            assert EventType.TIMER_FIRED not in types, (wid, types)
            branch = history[_index(history, EventType.BRANCH_TAKEN)]
            assert branch.name == plan.last_step, (wid, plan, branch)
            received = history[_index(history, EventType.SIGNAL_RECEIVED)]
            assert received.name == plan.answer, (wid, received)
            signal_at = _index(history, EventType.SIGNAL)
            wait_at = _index(history, EventType.WAIT_STARTED)
            if plan.timing == "before":
                assert signal_at < wait_at, (wid, "the signal should precede the wait", types)
            else:
                assert wait_at < signal_at, (wid, "the signal should follow the wait", types)
        assert approval_saga.EFFECTS[key_of(wid, plan.last_step, CommandKind.ACTION)] == [
            plan.effect
        ], wid
    ran_steps = {key.split("/")[1] for key in approval_saga.EFFECTS}
    assert ran_steps == {"submit", "reimburse", "notify_rejected", "escalate"}
    assert len(approval_saga.EFFECTS) == 2 * WORKFLOWS
