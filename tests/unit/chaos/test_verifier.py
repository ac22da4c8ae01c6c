"""The chaos verifier on synthetic logs: a clean run passes, and each broken guarantee
(a decision taken twice, a lost workflow, a decision the plan would not take, an open
transaction, a poison record missing from the DLQ, an effect applied twice; a child lost,
unended, under another id or parent, ended otherwise than its parent was told, left in
place by a compensated parent, or undone out of order) is caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from processors.store.keys import WORKFLOW_PREFIX
from sagas import Saga
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import Event, EventType, Origin
from sagas.testing import SagaTestEnvironment
from tests.chaos import chaos_saga
from tests.chaos.verifier import DeadLetter, Offsets, RunRecord, Verdict, verify
from tests.integration.participants import ledger
from topics.dead_letter_headers import HEADER_REASON

WORKFLOWS = [f"trip-{i}" for i in range(12)]
CHILD = chaos_saga.CHILD_STEP
POISON = b"poison-0"


Sagas = tuple[SagaVersions, SagaVersions]


@pytest.fixture(scope="module")
def versions() -> Sagas:
    """The trip saga and the insurance saga it starts as a child."""
    return compile_versions(chaos_saga.saga), compile_versions(chaos_saga.insurance)


@pytest.fixture
def clean_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunRecord:
    """Twelve workflows run through the test kit (the runtime's own core), half approved,
    each with the insurance child it starts."""
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(ledger.LEDGER_ENV, str(path))
    events: dict[str, list[Event]] = {}
    children: dict[str, list[Event]] = {}
    with SagaTestEnvironment(chaos_saga.saga, chaos_saga.insurance) as env:
        for n, wid in enumerate(WORKFLOWS):
            env.start(chaos_saga.trip_input(wid), workflow_id=wid)
            if n % 2:
                env.signal(wid, chaos_saga.APPROVAL_SIGNAL, {"approver": "ann"})
            env.run_until_complete(wid)
            events[wid] = env.history(wid)
            if any(e.type is EventType.CHILD_STARTED for e in events[wid]):
                children[f"{wid}/{CHILD}"] = env.history(f"{wid}/{CHILD}")
    return RunRecord(
        started=frozenset(WORKFLOWS),
        events=events,
        changelog=_changelog(chaos_saga.saga, events),
        dead_letters=[DeadLetter(POISON, b"\x00junk", {HEADER_REASON: b"undecodable"})],
        poison_keys=frozenset({POISON}),
        effects=ledger.view(ledger.read(path)),
        offsets=[Offsets("chaos_trip.events", 0, 120, 120)],
        quiet_since_ms=min(h[0].time_ms for h in events.values()),
        terminal_bound_ms=10**12,
        children=children,
        child_changelog=_changelog(chaos_saga.insurance, children),
    )


def _changelog(saga: Saga[Any], events: dict[str, list[Event]]) -> dict[bytes, bytes | None]:
    """What the processor's changelog holds: each workflow's folded state."""
    plan = compile_versions(saga).plans[1]
    changelog: dict[bytes, bytes | None] = {}
    for wid, history in events.items():
        state = plan.fold(history)
        assert state is not None
        changelog[WORKFLOW_PREFIX + wid.encode()] = state.to_bytes()
    return changelog


def _checks(verdict: Verdict) -> set[str]:
    return {v.check for v in verdict.violations}


def test_a_clean_run_passes_every_check(clean_run: RunRecord, versions: Sagas) -> None:
    verdict = verify(clean_run, *versions)
    assert verdict.ok, [str(v) for v in verdict.violations]
    assert verdict.terminal == len(WORKFLOWS)
    assert verdict.children == verdict.children_terminal == len(clean_run.children)
    assert verdict.replayed_states == len(WORKFLOWS) + len(clean_run.children)
    assert verdict.dead_lettered_poison == 1


def test_a_decision_written_twice_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    wid = WORKFLOWS[0]
    history = list(clean_run.events[wid])
    scheduled = next(e for e in history if e.type is EventType.STEP_SCHEDULED)
    # A zombie's transaction made visible: the same decision once more, later in the log.
    history.insert(history.index(scheduled) + 3, scheduled)
    run = dataclasses.replace(clean_run, events={**clean_run.events, wid: history})
    verdict = verify(run, *versions)
    assert "decided-twice" in _checks(verdict)
    assert verdict.duplicated_decisions >= 1
    assert {v.workflow_id for v in verdict.violations} == {wid}


def test_a_second_decision_for_the_same_attempt_is_caught(
    clean_run: RunRecord, versions: Sagas
) -> None:
    wid = WORKFLOWS[1]
    history = list(clean_run.events[wid])
    scheduled = next(e for e in history if e.type is EventType.STEP_SCHEDULED)
    again = dataclasses.replace(scheduled, event_id=scheduled.event_id + "-again")
    history.insert(history.index(scheduled) + 1, again)
    verdict = verify(dataclasses.replace(clean_run, events={**clean_run.events, wid: history}),
                     *versions)  # fmt: skip
    assert "decided-twice" in _checks(verdict)
    assert "decision-mismatch" in _checks(verdict)


def test_a_lost_workflow_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    lost = WORKFLOWS[2]
    events = {wid: h for wid, h in clean_run.events.items() if wid != lost}
    verdict = verify(dataclasses.replace(clean_run, events=events), *versions)
    assert verdict.lost == 1
    child = f"{lost}/{CHILD}"
    assert child in clean_run.children
    assert {v.workflow_id for v in verdict.violations} == {lost, child}
    # Its effects, applied by the participants, are found to have no log behind them too,
    # and its child to have no parent.
    assert _checks(verdict) == {"lost", "effect-unrecorded", "unknown"}


def test_a_workflow_that_never_ends_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    wid = WORKFLOWS[3]
    history = [e for e in clean_run.events[wid] if e.type not in {EventType.COMPLETED,
               EventType.COMPENSATED, EventType.FAILED}]  # fmt: skip
    verdict = verify(dataclasses.replace(clean_run, events={**clean_run.events, wid: history}),
                     *versions)  # fmt: skip
    assert verdict.stuck == 1
    assert "terminal" in _checks(verdict)


def test_a_decision_the_plan_would_not_take_is_caught(
    clean_run: RunRecord, versions: Sagas
) -> None:
    wid = WORKFLOWS[4]
    history = list(clean_run.events[wid])
    i = next(i for i, e in enumerate(history) if e.type is EventType.TIMER_STARTED)
    history[i] = dataclasses.replace(history[i], due_ms=(history[i].due_ms or 0) + 1)
    verdict = verify(dataclasses.replace(clean_run, events={**clean_run.events, wid: history}),
                     *versions)  # fmt: skip
    assert "decision-mismatch" in _checks(verdict)


def test_a_changelog_state_that_is_not_the_fold_is_caught(
    clean_run: RunRecord, versions: Sagas
) -> None:
    key = WORKFLOW_PREFIX + WORKFLOWS[5].encode()
    changelog = {**clean_run.changelog, key: (clean_run.changelog[key] or b"") + b" "}
    verdict = verify(dataclasses.replace(clean_run, changelog=changelog), *versions)
    assert _checks(verdict) == {"replay"}


def test_an_open_transaction_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    offsets = [*clean_run.offsets, Offsets("chaos_trip.events", 1, 40, 43)]
    verdict = verify(dataclasses.replace(clean_run, offsets=offsets), *versions)
    assert _checks(verdict) == {"open-transaction"}


def test_poison_missing_from_the_dlq_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    run = dataclasses.replace(clean_run, poison_keys=frozenset({POISON, b"poison-1"}))
    verdict = verify(run, *versions)
    assert [(v.check, v.workflow_id) for v in verdict.violations] == [("dlq", "poison-1")]


def test_an_effect_applied_twice_with_different_values_is_caught(
    clean_run: RunRecord, versions: Sagas
) -> None:
    key = next(iter(clean_run.effects.applied))
    effects = dataclasses.replace(
        clean_run.effects,
        effects_seen={**clean_run.effects.effects_seen, key: {"a", "b"}},
    )
    verdict = verify(dataclasses.replace(clean_run, effects=effects), *versions)
    assert verdict.duplicated_effects == 1
    assert _checks(verdict) == {"effect-once"}


def test_a_resent_answer_ignored_by_the_processor_is_no_duplicate(
    clean_run: RunRecord, versions: Sagas
) -> None:
    wid = WORKFLOWS[2]
    history = list(clean_run.events[wid])
    answer = next(
        e for e in history if e.type is EventType.STEP_SUCCEEDED and e.origin is Origin.WORKER
    )
    later = next(
        i
        for i, e in enumerate(history)
        if e.origin is Origin.WORKER and e.step != answer.step and i > history.index(answer)
    )
    # A worker that started over ran the step again: the copy shares the answer's id, and
    # the processor's answer_ignored for it the id of the first copy's first decision.
    ignored = dataclasses.replace(
        answer,
        event_id=f"{answer.event_id}:0",
        type=EventType.ANSWER_IGNORED,
        origin=Origin.PROCESSOR,
        name=EventType.STEP_SUCCEEDED.value,
        payload=None,
        cause=answer.event_id,
    )
    history[later:later] = [answer, ignored]
    verdict = verify(dataclasses.replace(clean_run, events={**clean_run.events, wid: history}),
                     *versions)  # fmt: skip
    assert verdict.ok, [str(v) for v in verdict.violations]
    # The copy's transaction made visible twice: one copy, two answer_ignored.
    history.insert(history.index(ignored) + 1, ignored)
    twice = dataclasses.replace(clean_run, events={**clean_run.events, wid: history})
    assert "decided-twice" in _checks(verify(twice, *versions))


def _child_where(run: RunRecord, *, undone: bool) -> str:
    """A child of the clean run its parent asked to undo itself, or one it did not."""
    return next(
        child
        for child, events in sorted(run.children.items())
        if any(e.type is EventType.COMPENSATE_REQUESTED for e in events) is undone
        and any(e.type is EventType.COMPLETED for e in events)
    )


def test_children_ended_and_undone_as_their_parents_say(
    clean_run: RunRecord, versions: Sagas
) -> None:
    undone = _child_where(clean_run, undone=True)
    assert clean_run.children[undone][-1].type is EventType.COMPENSATED
    parent = undone.rsplit("/", 1)[0]
    assert clean_run.events[parent][-1].type is EventType.COMPENSATED
    verdict = verify(clean_run, *versions)
    assert verdict.ok, [str(v) for v in verdict.violations]
    assert verdict.children_undone >= 1


def test_a_child_naming_another_parent_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    child = _child_where(clean_run, undone=False)
    history = [
        dataclasses.replace(e, parent="chaos_trip/trip-99/insure") if e.parent else e
        for e in clean_run.children[child]
    ]
    run = dataclasses.replace(clean_run, children={**clean_run.children, child: history})
    verdict = verify(run, *versions)
    # The changelog's state still names the real parent, which the fold no longer gives.
    assert _checks(verdict) == {"child-parent", "replay"}
    assert {v.workflow_id for v in verdict.violations} == {child}


def test_a_child_under_another_id_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    child = _child_where(clean_run, undone=False)
    parent = child.rsplit("/", 1)[0]
    # The parent starts its child under an id that does not name it and its step.
    moved = f"{parent}-{CHILD}"
    history = [
        dataclasses.replace(e, name=moved) if e.type is EventType.CHILD_STARTED else e
        for e in clean_run.events[parent]
    ]
    children = {k: v for k, v in clean_run.children.items() if k != child}
    children[moved] = [dataclasses.replace(e, workflow_id=moved) for e in clean_run.children[child]]
    run = dataclasses.replace(
        clean_run, events={**clean_run.events, parent: history}, children=children
    )
    assert "child-id" in _checks(verify(run, *versions))


def test_a_lost_child_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    child = _child_where(clean_run, undone=False)
    children = {k: v for k, v in clean_run.children.items() if k != child}
    verdict = verify(dataclasses.replace(clean_run, children=children), *versions)
    assert verdict.lost == 1
    assert _checks(verdict) == {"child-lost", "effect-unrecorded"}
    assert {v.workflow_id for v in verdict.violations} == {child}


def test_a_child_that_never_ends_is_caught(clean_run: RunRecord, versions: Sagas) -> None:
    child = _child_where(clean_run, undone=False)
    history = [e for e in clean_run.children[child] if e.type is not EventType.COMPLETED]
    run = dataclasses.replace(clean_run, children={**clean_run.children, child: history})
    verdict = verify(run, *versions)
    assert verdict.stuck == 1
    assert "terminal" in _checks(verdict)


def test_a_parent_told_another_outcome_than_its_child_s_is_caught(
    clean_run: RunRecord, versions: Sagas
) -> None:
    child = _child_where(clean_run, undone=False)
    # The child failed and compensated itself, yet its parent went on and completed.
    history = [
        dataclasses.replace(e, type=EventType.COMPENSATED, payload=None)
        if e.type is EventType.COMPLETED
        else e
        for e in clean_run.children[child]
    ]
    run = dataclasses.replace(clean_run, children={**clean_run.children, child: history})
    verdict = verify(run, *versions)
    assert "child-outcome" in _checks(verdict)
    outcome = [v.detail for v in verdict.violations if v.check == "child-outcome"]
    assert "ended compensated, its parent was told COMPLETED" in outcome
    assert "ended compensated, its parent completed" in outcome


def test_a_completed_child_its_compensated_parent_left_in_place_is_caught(
    clean_run: RunRecord, versions: Sagas
) -> None:
    child = _child_where(clean_run, undone=True)
    events = clean_run.children[child]
    asked = next(i for i, e in enumerate(events) if e.type is EventType.COMPENSATE_REQUESTED)
    # The parent's request to undo never reached the child: it stays completed.
    run = dataclasses.replace(clean_run, children={**clean_run.children, child: events[:asked]})
    verdict = verify(run, *versions)
    undo = [v.detail for v in verdict.violations if v.check == "child-undo"]
    assert undo == [f"its parent compensated {CHILD}, the child was never asked to undo itself"]


def test_child_compensations_out_of_order_are_caught(clean_run: RunRecord, versions: Sagas) -> None:
    child = _child_where(clean_run, undone=True)
    order = clean_run.effects.first_applied_order[child]
    undone = [k for k in order if k.endswith("/compensate")]
    assert len(undone) == 2
    # The quote withdrawn before the policy bound on it was cancelled: not latest first.
    swapped = [k for k in order if k not in undone] + undone[::-1]
    effects = dataclasses.replace(
        clean_run.effects,
        first_applied_order={**clean_run.effects.first_applied_order, child: swapped},
    )
    verdict = verify(dataclasses.replace(clean_run, effects=effects), *versions)
    assert _checks(verdict) == {"child-undo"}
