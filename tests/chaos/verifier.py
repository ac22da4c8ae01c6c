"""The chaos run's verifier: what must hold in the topics after any fault, checked on what was
read back ``read_committed``, in the spirit of Kafka's exactly-once verifier.

Pure: it takes the decoded log, the changelog's last values, the DLQ, the effect ledger
and the offsets, so its unit tests feed it synthetic logs with no broker.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from processors.store.keys import WORKFLOW_PREFIX
from sagas.engine.fold import is_live_answer
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError
from sagas.events import INPUT_TYPES, Event, EventType, Origin
from tests.integration.participants.ledger import LedgerView
from topics.dead_letter_headers import HEADER_REASON

TERMINAL = frozenset(
    {
        EventType.COMPLETED,
        EventType.COMPENSATED,
        EventType.FAILED,
        EventType.CANCELLED,
        EventType.TERMINATED,
    }
)
_SCHEDULES = frozenset(
    {EventType.STEP_SCHEDULED, EventType.COMPENSATION_SCHEDULED, EventType.CHILD_STARTED}
)
_ANSWERS = frozenset(
    {
        EventType.STEP_SUCCEEDED,
        EventType.STEP_FAILED,
        EventType.COMPENSATION_SUCCEEDED,
        EventType.COMPENSATION_FAILED,
    }
)
_COMPARED = ("type", "step", "attempt", "payload", "error", "name", "due_ms", "parent")


@dataclass(frozen=True, slots=True)
class Violation:
    """One guarantee found broken, for one workflow (or ``None`` for the run)."""

    check: str
    workflow_id: str | None
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.workflow_id or '-'}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Offsets:
    """A partition's end as a read_committed reader sees it (LSO) and its high watermark."""

    topic: str
    partition: int
    last_stable: int
    high_watermark: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ record: the original key and value and its headers."""

    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """Everything the verifier reads about one finished run."""

    started: frozenset[str]
    """The workflow ids the workload asked to start."""
    events: Mapping[str, list[Event]]
    """Per workflow, its events in log order, as read back read_committed."""
    changelog: Mapping[bytes, bytes | None]
    """The changelog's last value per key."""
    dead_letters: list[DeadLetter]
    poison_keys: frozenset[bytes]
    """The keys of the poison records the run wrote to the event topic."""
    effects: LedgerView
    offsets: list[Offsets]
    quiet_since_ms: int
    """When the last fault was undone: every workflow must end within the bound after it."""
    terminal_bound_ms: int
    children: Mapping[str, list[Event]] = field(default_factory=dict)
    """Per child workflow (``<parent id>/<step>``), its events in its own saga's log."""
    child_changelog: Mapping[bytes, bytes | None] = field(default_factory=dict)
    """The child saga's changelog, last value per key."""


@dataclass
class Verdict:
    """The violations found and the counts the figures quote."""

    violations: list[Violation] = field(default_factory=list)
    workflows: int = 0
    terminal: int = 0
    lost: int = 0
    stuck: int = 0
    duplicated_decisions: int = 0
    duplicated_effects: int = 0
    dead_lettered_poison: int = 0
    poison_delivered: int = 0
    replayed_states: int = 0
    children: int = 0
    """Child workflows the parents started."""
    children_terminal: int = 0
    children_undone: int = 0
    """Completed children a parent asked to undo themselves."""
    children_failed: int = 0
    """Children that failed (compensated, failed or cancelled): their step failed."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, check: str, workflow_id: str | None, detail: str) -> None:
        self.violations.append(Violation(check, workflow_id, detail))


def verify(
    run: RunRecord, versions: SagaVersions, child_versions: SagaVersions | None = None
) -> Verdict:
    """Check every guarantee on ``run``; the verdict lists each violation found.

    ``child_versions`` is the saga the parents start as children: each child workflow is
    checked as a workflow of its own, and against the parent that started it.
    """
    verdict = Verdict(workflows=len(run.started))
    expected: dict[str, tuple[str, str]] = {}
    for wid in sorted(run.started):
        events = run.events.get(wid, [])
        if not any(e.type is EventType.STARTED for e in events):
            verdict.lost += 1
            verdict.add("lost", wid, "started by the client, never STARTED in the log")
            continue
        _check_lifecycle(verdict, wid, events, run)
        _check_decisions(verdict, wid, events, versions)
        _check_replay(verdict, wid, events, run.changelog, versions)
        for e in events:
            if e.type is EventType.CHILD_STARTED and e.name is not None:
                expected.setdefault(e.name, (wid, e.step or ""))
    for wid in sorted(set(run.events) - run.started):
        verdict.add("unknown", wid, f"{len(run.events[wid])} events of a workflow nobody started")
    if child_versions is not None:
        _check_children(verdict, run, expected, versions.name, child_versions)
    _check_effects(verdict, run)
    _check_transactions(verdict, run.offsets)
    _check_poison(verdict, run)
    return verdict


def _is_input(event: Event) -> bool:
    """Whether the processor applied ``event`` as it read it; every other event is one of
    its decisions. By type, not origin: a child's processor writes the child's news into
    its parent's log, and a parent's processor the start into its child's."""
    return event.type in INPUT_TYPES


def _check_children(
    verdict: Verdict,
    run: RunRecord,
    expected: Mapping[str, tuple[str, str]],
    parent_saga: str,
    child_versions: SagaVersions,
) -> None:
    """Every child a parent started ran once under ``<parent>/<step>``, ended, and ended the
    way its parent's log says; a parent that undid its step had the child undo itself."""
    verdict.children = len(expected)
    for child, (parent, step) in sorted(expected.items()):
        events = run.children.get(child, [])
        if child != f"{parent}/{step}":
            verdict.add("child-id", parent, f"step {step} started child {child!r}")
        if not any(e.type is EventType.STARTED for e in events):
            verdict.lost += 1
            verdict.add("child-lost", child, f"started by {parent}, never STARTED in its log")
            continue
        relation = f"{parent_saga}/{parent}/{step}"
        for e in events:
            if e.type in (EventType.START_REQUESTED, EventType.STARTED) and e.parent != relation:
                verdict.add("child-parent", child, f"{e.type.value} names parent {e.parent!r}")
        _check_lifecycle(verdict, child, events, run, child=True)
        _check_decisions(verdict, child, events, child_versions)
        _check_replay(verdict, child, events, run.child_changelog, child_versions)
        _check_child_outcome(verdict, run, child, events, run.events.get(parent, []), step)
    for child in sorted(set(run.children) - set(expected)):
        verdict.add(
            "unknown", child, f"{len(run.children[child])} events of a child no parent started"
        )


def _check_child_outcome(
    verdict: Verdict,
    run: RunRecord,
    child: str,
    events: list[Event],
    parent_events: list[Event],
    step: str,
) -> None:
    ends = [e for e in events if e.type in TERMINAL]
    parent_ends = [e for e in parent_events if e.type in TERMINAL]
    if not ends or not parent_ends:
        return  # the lifecycle checks name a workflow that never ended
    first, parent_end = ends[0], parent_ends[0]
    told = next(
        (e for e in parent_events if e.type is EventType.CHILD_ENDED and e.step == step), None
    )
    if told is None or told.name != first.type.value.upper():
        verdict.add(
            "child-outcome",
            child,
            f"ended {first.type.value}, its parent was told {told.name if told else 'nothing'}",
        )
    undo_asked = any(e.type is EventType.COMPENSATE_REQUESTED for e in events)
    undoing = any(
        e.type is EventType.COMPENSATION_SCHEDULED and e.step == step for e in parent_events
    )
    if first.type is not EventType.COMPLETED:
        verdict.children_failed += 1
        if parent_end.type is EventType.COMPLETED:
            verdict.add("child-outcome", child, f"ended {first.type.value}, its parent completed")
        if undoing or undo_asked:
            verdict.add("child-outcome", child, f"ended {first.type.value}, then asked to undo")
        return
    if undoing != undo_asked:
        verdict.add(
            "child-undo",
            child,
            "asked to undo itself with no compensation of its parent's step"
            if undo_asked
            else f"its parent compensated {step}, the child was never asked to undo itself",
        )
    if parent_end.type is EventType.COMPENSATED and not undoing:
        verdict.add("child-undo", child, "its parent compensated, the completed child stayed")
    if not undo_asked:
        return
    verdict.children_undone += 1
    done = _steps_answered(events, EventType.STEP_SUCCEEDED)
    undone = _steps_answered(events, EventType.COMPENSATION_SUCCEEDED)
    last = ends[-1].type
    if last is EventType.COMPENSATED and sorted(undone) != sorted(done):
        verdict.add("child-undo", child, f"compensated {undone} of its completed steps {done}")
    answer = {EventType.COMPENSATED: EventType.COMPENSATION_SUCCEEDED}.get(
        last, EventType.COMPENSATION_FAILED
    )
    if not any(e.type is answer and e.step == step for e in parent_events):
        verdict.add("child-undo", child, f"ended {last.value}, its parent has no {answer.value}")
    # Latest first, each once: the ledger's first effects of the child's compensations.
    order = [
        k.rsplit("/", 2)[1]
        for k in run.effects.first_applied_order.get(child, [])
        if k.endswith("/compensate")
    ]
    if order != [s for s in reversed(done) if s in undone]:
        verdict.add("child-undo", child, f"compensations applied {order}, completed steps {done}")


def _steps_answered(events: list[Event], type_: EventType) -> list[str]:
    """The steps a worker answered ``type_`` for, in log order, each once (an answer
    re-sent by a worker that started over is a copy)."""
    answered = (e.step or "" for e in events if e.type is type_ and e.origin is Origin.WORKER)
    return list(dict.fromkeys(answered))


def _check_lifecycle(
    verdict: Verdict, wid: str, events: list[Event], run: RunRecord, *, child: bool = False
) -> None:
    counts = Counter(e.type for e in events)
    if counts[EventType.STARTED] != 1:
        verdict.add("one-start", wid, f"{counts[EventType.STARTED]} STARTED events")
    ends = [e for e in events if e.type in TERMINAL]
    if not ends:
        verdict.stuck += 1
        verdict.add("terminal", wid, f"never ended; last event {events[-1].type.value}")
        return
    verdict.terminal += not child
    verdict.children_terminal += child
    if len(ends) > 1 and not (child and _undone_after_completing(events, ends)):
        verdict.add("one-end", wid, f"ended {len(ends)} times: {[e.type.value for e in ends]}")
    late_ms = ends[-1].time_ms - run.quiet_since_ms
    if late_ms > run.terminal_bound_ms:
        verdict.stuck += 1
        verdict.add(
            "terminal-bound",
            wid,
            f"ended {late_ms} ms after the faults stopped (bound {run.terminal_bound_ms} ms)",
        )
    scheduled = Counter((e.type, e.step, e.attempt) for e in events if e.type in _SCHEDULES)
    for (type_, step, attempt), n in scheduled.items():
        if n > 1:
            verdict.duplicated_decisions += 1
            verdict.add("decided-twice", wid, f"{type_.value} {step} attempt {attempt} x{n}")


def _undone_after_completing(events: list[Event], ends: list[Event]) -> bool:
    """A child completes, then its parent asks it to undo itself: it ends a second time."""
    if len(ends) != 2 or ends[0].type is not EventType.COMPLETED:
        return False
    if ends[1].type not in (EventType.COMPENSATED, EventType.FAILED):
        return False
    between = events[events.index(ends[0]) : events.index(ends[1])]
    return any(e.type is EventType.COMPENSATE_REQUESTED for e in between)


def _facts(event: Event) -> tuple[object, ...]:
    return tuple(getattr(event, name) for name in _COMPARED)


def _check_decisions(
    verdict: Verdict, wid: str, events: list[Event], versions: SagaVersions
) -> None:
    """Replay the workflow's inputs through the plan, in the order the processor handled
    them, and compare each transition's decisions with the ones in the log.

    The processor handles a partition's inputs in log order, but appends the decisions
    of an input after whatever else arrived meanwhile; the order it handled inputs in is
    the order of their first decisions (``cause`` names the input). An input with no
    decisions changed nothing, or the replay finds it deciding something the log lacks.
    """
    # A decision's id derives from its input's, which every re-sent copy of an answer
    # shares: the answer_ignored of a copy repeats the id of the first copy's decision.
    # Those are no-ops; a transaction applied twice repeats the others too.
    ids = Counter(e.event_id for e in events if not _is_input(e) and not _ignores_an_answer(e))
    copies = Counter(e.event_id for e in events if _is_input(e))
    for event_id, n in ids.items():
        if n > 1:
            verdict.duplicated_decisions += 1
            verdict.add("decided-twice", wid, f"decision {event_id} appears {n} times")
    groups: dict[str, list[Event]] = defaultdict(list)
    seen: set[str] = set()
    for e in events:
        if not _is_input(e) and (e.event_id not in seen or _ignores_an_answer(e)):
            seen.add(e.event_id)
            groups[e.event_id if e.type is EventType.TIMER_FIRED else e.cause or ""].append(e)
    inputs = {e.event_id: e for e in events if _is_input(e)}
    pending = [e for e in events if _is_input(e)]
    handled: set[str] = set()
    state: WorkflowState | None = None
    answers_applied: Counter[tuple[EventType, str | None, int]] = Counter()
    for e in events:
        if _is_input(e):
            continue
        cause = e.event_id if e.type is EventType.TIMER_FIRED else e.cause or ""
        if cause in handled:
            continue
        if e.type is EventType.TIMER_FIRED:
            trigger = e
        elif cause in inputs:
            trigger = inputs[cause]
            while pending and pending[0].event_id != cause:
                state = _replay(verdict, wid, versions, state, pending.pop(0), [])
            if pending:
                pending.pop(0)
        else:
            verdict.add("decision-without-input", wid, f"{e.type.value} caused by {cause!r}")
            handled.add(cause)
            continue
        handled.add(cause)
        recorded = groups[cause]
        if copies[cause] > 1:
            # The later copies were ignored, each with its own answer_ignored under this
            # cause; they are replayed on their own below, with nothing recorded.
            ignored = [d for d in recorded if _ignores_an_answer(d)]
            rest = [d for d in recorded if not _ignores_an_answer(d)]
            first_ignored = not rest and state is not None and not is_live_answer(state, trigger)
            recorded = ignored[:1] if first_ignored else rest
            if len(ignored) - first_ignored > copies[cause] - 1:
                verdict.add("decided-twice", wid, f"{len(ignored)} copies of {cause} ignored")
        if trigger.type in _ANSWERS and any(
            d.type is not EventType.ANSWER_IGNORED for d in recorded
        ):
            answers_applied[trigger.type, trigger.step, trigger.attempt] += 1
        state = _replay(verdict, wid, versions, state, trigger, recorded)
    for unhandled in pending:
        state = _replay(verdict, wid, versions, state, unhandled, [])
    for (type_, step, attempt), n in answers_applied.items():
        if n > 1:
            verdict.add("answer-twice", wid, f"{type_.value} {step} attempt {attempt} applied x{n}")


def _ignores_an_answer(event: Event) -> bool:
    return event.type is EventType.ANSWER_IGNORED and event.name in _ANSWER_NAMES


_ANSWER_NAMES = frozenset(t.value for t in _ANSWERS)


def _replay(
    verdict: Verdict,
    wid: str,
    versions: SagaVersions,
    state: WorkflowState | None,
    trigger: Event,
    recorded: list[Event],
) -> WorkflowState | None:
    now = recorded[-1].time_ms if recorded else trigger.time_ms
    try:
        transition = versions.plan_for(state, trigger).handle(state, trigger, now)
    except SagaError as exc:
        if recorded:
            verdict.add("decision-mismatch", wid, f"{trigger.type.value} no longer applies: {exc}")
        return state
    if not recorded:
        # Inputs the processor did not act on: late answers, duplicates, or an input still
        # held; a replay that would decide something here is a decision the log lost.
        decided = [d for d in transition.decisions if d.type is not EventType.ANSWER_IGNORED]
        if decided and state is not None and not state.status.is_final:
            verdict.add(
                "decision-missing",
                wid,
                f"{trigger.type.value} {trigger.step or ''} decided nothing in the log,"
                f" the plan decides {[d.type.value for d in decided]}",
            )
        return transition.state
    got = [_facts(d) for d in transition.decisions]
    want = [_facts(d) for d in recorded]
    if got != want:
        verdict.add(
            "decision-mismatch",
            wid,
            f"after {trigger.type.value} {trigger.step or ''}: log has"
            f" {[d.type.value for d in recorded]}, plan decides"
            f" {[d.type.value for d in transition.decisions]}",
        )
    return transition.state


def _check_replay(
    verdict: Verdict,
    wid: str,
    events: list[Event],
    changelog: Mapping[bytes, bytes | None],
    versions: SagaVersions,
) -> None:
    """Folding the log from offset zero must give the processor's stored state, byte for byte."""
    started = next(e for e in events if e.type is EventType.STARTED)
    folded = versions.plans[started.version].fold(events)
    stored = changelog.get(WORKFLOW_PREFIX + wid.encode())
    if folded is None or stored is None:
        verdict.add("replay", wid, "no state in the changelog" if folded else "fold gives none")
        return
    verdict.replayed_states += 1
    replayed = folded.to_bytes()
    if replayed != stored:
        at = next(
            (i for i, (a, b) in enumerate(zip(replayed, stored, strict=False)) if a != b),
            min(len(replayed), len(stored)),
        )
        verdict.add(
            "replay",
            wid,
            "folding the log gives another state than the changelog's: at byte"
            f" {at}, fold {replayed[max(0, at - 40) : at + 60]!r},"
            f" changelog {stored[max(0, at - 40) : at + 60]!r}",
        )


def _check_effects(verdict: Verdict, run: RunRecord) -> None:
    """Each idempotency key takes one effect, and only for a step its log says succeeded."""
    for key, effects in run.effects.effects_seen.items():
        if len(effects) > 1:
            verdict.duplicated_effects += 1
            verdict.add("effect-once", _workflow_of(key), f"{key}: effects {sorted(effects)}")
    succeeded: set[str] = set()
    # Worker answers only: a child step's answers come from the child's processor, and its
    # effects are the child's steps', under the child's own keys.
    for wid, events in [*run.events.items(), *run.children.items()]:
        for e in events:
            if e.origin is not Origin.WORKER:
                continue
            if e.type is EventType.STEP_SUCCEEDED:
                succeeded.add(f"{wid}/{e.step}/action")
            elif e.type is EventType.COMPENSATION_SUCCEEDED:
                succeeded.add(f"{wid}/{e.step}/compensate")
    for key in run.effects.applied:
        if key not in succeeded:
            verdict.add("effect-unrecorded", _workflow_of(key), f"{key} applied, never answered")
    for key in succeeded - set(run.effects.applied):
        verdict.add("effect-missing", _workflow_of(key), f"{key} succeeded with no effect")


def _workflow_of(key: str) -> str:
    """The workflow of an idempotency key ``<workflow>/<step>/<kind>``; a child's id holds
    a ``/`` of its own."""
    return key.rsplit("/", 2)[0]


def _check_transactions(verdict: Verdict, offsets: Iterable[Offsets]) -> None:
    for o in offsets:
        if o.last_stable != o.high_watermark:
            verdict.add(
                "open-transaction",
                None,
                f"{o.topic}[{o.partition}] last stable offset {o.last_stable}"
                f" < high watermark {o.high_watermark}",
            )


def _check_poison(verdict: Verdict, run: RunRecord) -> None:
    reasons: dict[bytes, bytes] = {}
    for letter in run.dead_letters:
        if letter.key is not None and letter.key in run.poison_keys:
            reason = letter.headers.get(HEADER_REASON)
            if not reason:
                verdict.add("dlq-reason", letter.key.decode(errors="replace"), "no reason header")
            reasons[letter.key] = reason or b""
    verdict.dead_lettered_poison = len(reasons)
    verdict.poison_delivered = len(run.poison_keys)
    missing = run.poison_keys - set(reasons)
    for key in sorted(missing)[:20]:
        verdict.add("dlq", key.decode(errors="replace"), "poison record not in the DLQ")
