"""The chaos verifier on synthetic logs: a clean run passes, and each broken guarantee
(a decision taken twice, a lost workflow, a decision the plan would not take, an open
transaction, a poison record missing from the DLQ, an effect applied twice) is caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from processors.store.keys import WORKFLOW_PREFIX
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import Event, EventType, Origin
from sagas.testing import SagaTestEnvironment
from tests.chaos import chaos_saga
from tests.chaos.verifier import DeadLetter, Offsets, RunRecord, Verdict, verify
from tests.integration.participants import ledger
from topics.dead_letter_headers import HEADER_REASON

WORKFLOWS = [f"trip-{i}" for i in range(12)]
POISON = b"poison-0"


@pytest.fixture(scope="module")
def versions() -> SagaVersions:
    return compile_versions(chaos_saga.saga)


@pytest.fixture
def clean_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunRecord:
    """Twelve workflows run through the test kit (the runtime's own core), half approved."""
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(ledger.LEDGER_ENV, str(path))
    events: dict[str, list[Event]] = {}
    with SagaTestEnvironment(chaos_saga.saga) as env:
        for n, wid in enumerate(WORKFLOWS):
            env.start(chaos_saga.trip_input(wid), workflow_id=wid)
            if n % 2:
                env.signal(wid, chaos_saga.APPROVAL_SIGNAL, {"approver": "ann"})
            env.run_until_complete(wid)
            events[wid] = env.history(wid)
    versions = compile_versions(chaos_saga.saga)
    changelog: dict[bytes, bytes | None] = {}
    for wid, history in events.items():
        state = versions.plans[1].fold(history)
        assert state is not None
        changelog[WORKFLOW_PREFIX + wid.encode()] = state.to_bytes()
    return RunRecord(
        started=frozenset(WORKFLOWS),
        events=events,
        changelog=changelog,
        dead_letters=[DeadLetter(POISON, b"\x00junk", {HEADER_REASON: b"undecodable"})],
        poison_keys=frozenset({POISON}),
        effects=ledger.view(ledger.read(path)),
        offsets=[Offsets("chaos_trip.events", 0, 120, 120)],
        quiet_since_ms=min(h[0].time_ms for h in events.values()),
        terminal_bound_ms=10**12,
    )


def _checks(verdict: Verdict) -> set[str]:
    return {v.check for v in verdict.violations}


def test_a_clean_run_passes_every_check(clean_run: RunRecord, versions: SagaVersions) -> None:
    verdict = verify(clean_run, versions)
    assert verdict.ok, [str(v) for v in verdict.violations]
    assert verdict.terminal == verdict.replayed_states == len(WORKFLOWS)
    assert verdict.dead_lettered_poison == 1


def test_a_decision_written_twice_is_caught(clean_run: RunRecord, versions: SagaVersions) -> None:
    wid = WORKFLOWS[0]
    history = list(clean_run.events[wid])
    scheduled = next(e for e in history if e.type is EventType.STEP_SCHEDULED)
    # A zombie's transaction made visible: the same decision once more, later in the log.
    history.insert(history.index(scheduled) + 3, scheduled)
    run = dataclasses.replace(clean_run, events={**clean_run.events, wid: history})
    verdict = verify(run, versions)
    assert "decided-twice" in _checks(verdict)
    assert verdict.duplicated_decisions >= 1
    assert {v.workflow_id for v in verdict.violations} == {wid}


def test_a_second_decision_for_the_same_attempt_is_caught(
    clean_run: RunRecord, versions: SagaVersions
) -> None:
    wid = WORKFLOWS[1]
    history = list(clean_run.events[wid])
    scheduled = next(e for e in history if e.type is EventType.STEP_SCHEDULED)
    again = dataclasses.replace(scheduled, event_id=scheduled.event_id + "-again")
    history.insert(history.index(scheduled) + 1, again)
    verdict = verify(dataclasses.replace(clean_run, events={**clean_run.events, wid: history}),
                     versions)  # fmt: skip
    assert "decided-twice" in _checks(verdict)
    assert "decision-mismatch" in _checks(verdict)


def test_a_lost_workflow_is_caught(clean_run: RunRecord, versions: SagaVersions) -> None:
    lost = WORKFLOWS[2]
    events = {wid: h for wid, h in clean_run.events.items() if wid != lost}
    verdict = verify(dataclasses.replace(clean_run, events=events), versions)
    assert verdict.lost == 1
    assert {v.workflow_id for v in verdict.violations} == {lost}
    # Its effects, applied by the participants, are found to have no log behind them too.
    assert _checks(verdict) == {"lost", "effect-unrecorded"}


def test_a_workflow_that_never_ends_is_caught(clean_run: RunRecord, versions: SagaVersions) -> None:
    wid = WORKFLOWS[3]
    history = [e for e in clean_run.events[wid] if e.type not in {EventType.COMPLETED,
               EventType.COMPENSATED, EventType.FAILED}]  # fmt: skip
    verdict = verify(dataclasses.replace(clean_run, events={**clean_run.events, wid: history}),
                     versions)  # fmt: skip
    assert verdict.stuck == 1
    assert "terminal" in _checks(verdict)


def test_a_decision_the_plan_would_not_take_is_caught(
    clean_run: RunRecord, versions: SagaVersions
) -> None:
    wid = WORKFLOWS[4]
    history = list(clean_run.events[wid])
    i = next(i for i, e in enumerate(history) if e.type is EventType.TIMER_STARTED)
    history[i] = dataclasses.replace(history[i], due_ms=(history[i].due_ms or 0) + 1)
    verdict = verify(dataclasses.replace(clean_run, events={**clean_run.events, wid: history}),
                     versions)  # fmt: skip
    assert "decision-mismatch" in _checks(verdict)


def test_a_changelog_state_that_is_not_the_fold_is_caught(
    clean_run: RunRecord, versions: SagaVersions
) -> None:
    key = WORKFLOW_PREFIX + WORKFLOWS[5].encode()
    changelog = {**clean_run.changelog, key: (clean_run.changelog[key] or b"") + b" "}
    verdict = verify(dataclasses.replace(clean_run, changelog=changelog), versions)
    assert _checks(verdict) == {"replay"}


def test_an_open_transaction_is_caught(clean_run: RunRecord, versions: SagaVersions) -> None:
    offsets = [*clean_run.offsets, Offsets("chaos_trip.events", 1, 40, 43)]
    verdict = verify(dataclasses.replace(clean_run, offsets=offsets), versions)
    assert _checks(verdict) == {"open-transaction"}


def test_poison_missing_from_the_dlq_is_caught(
    clean_run: RunRecord, versions: SagaVersions
) -> None:
    run = dataclasses.replace(clean_run, poison_keys=frozenset({POISON, b"poison-1"}))
    verdict = verify(run, versions)
    assert [(v.check, v.workflow_id) for v in verdict.violations] == [("dlq", "poison-1")]


def test_an_effect_applied_twice_with_different_values_is_caught(
    clean_run: RunRecord, versions: SagaVersions
) -> None:
    key = next(iter(clean_run.effects.applied))
    effects = dataclasses.replace(
        clean_run.effects,
        effects_seen={**clean_run.effects.effects_seen, key: {"a", "b"}},
    )
    verdict = verify(dataclasses.replace(clean_run, effects=effects), versions)
    assert verdict.duplicated_effects == 1
    assert _checks(verdict) == {"effect-once"}


def test_a_resent_answer_ignored_by_the_processor_is_no_duplicate(
    clean_run: RunRecord, versions: SagaVersions
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
                     versions)  # fmt: skip
    assert verdict.ok, [str(v) for v in verdict.violations]
    # The copy's transaction made visible twice: one copy, two answer_ignored.
    history.insert(history.index(ignored) + 1, ignored)
    twice = dataclasses.replace(clean_run, events={**clean_run.events, wid: history})
    assert "decided-twice" in _checks(verify(twice, versions))
