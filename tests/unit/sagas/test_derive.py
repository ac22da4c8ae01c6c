"""``Saga.derive``: a new version made from the previous one by what changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import DefinitionError, Saga, StepContext, StepKind
from sagas.engine import compile_saga
from sagas.engine.versions import compile_versions
from sagas.events import CommandKind


class Job(BaseModel):
    job_id: str


def _noop(ctx: StepContext[Job]) -> None:
    return None


def _base() -> Saga[Job]:
    saga = Saga("job", input=Job, version=1, queue="jobs", retention=timedelta(days=2))
    reserve = saga.step(name="reserve")(_noop)
    reserve.compensation(_noop)
    with saga.parallel("book"):
        saga.step(name="book_a")(_noop).compensation(_noop)
        saga.step(name="book_b")(_noop).compensation(_noop)
    saga.step(name="charge", kind=StepKind.PIVOT)(_noop)
    saga.step(name="notify", kind=StepKind.RETRIABLE, timeout=timedelta(seconds=5))(_noop)
    return saga


def _names(saga: Saga[Job]) -> list[str]:
    plan = compile_saga(saga)
    return [node.name for node in plan.nodes]


def test_a_derived_version_keeps_every_node_and_setting_of_its_base() -> None:
    v1 = _base()
    v2 = v1.derive(version=2)
    assert (v2.name, v2.version, v2.input, v2.queue) == ("job", 2, Job, "jobs")
    assert v2.retention == timedelta(days=2)
    assert v2.derived_from is v1
    assert _names(v2) == _names(v1) == ["reserve", "book", "charge", "notify"]
    assert set(compile_saga(v2).steps) == set(compile_saga(v1).steps)


def test_replace_add_and_remove_change_only_the_derived_version() -> None:
    v1 = _base()
    v2 = v1.derive(version=2)

    @v2.step(replaces="charge", kind=StepKind.PIVOT, queue="payments")
    def charge_with_fraud_check(ctx: StepContext[Job]) -> None:
        return None

    @v2.step(after="reserve")
    def hold(ctx: StepContext[Job]) -> None:
        return None

    hold.compensation(_noop)
    v2.remove("notify")
    v2.remove("book_b")
    v2.step(name="book_c", after="book_a")(_noop).compensation(_noop)

    plan = compile_saga(v2)
    assert [n.name for n in plan.nodes] == ["reserve", "hold", "book", "charge"]
    assert plan.steps["charge"].queue == "payments"
    assert [s.name for s in plan.steps.values() if s.group == "book"] == ["book_a", "book_c"]
    functions = compile_versions([v1, v2]).functions
    assert functions[2].actions["charge", CommandKind.ACTION].fn is charge_with_fraud_check.fn
    assert functions[1].actions["charge", CommandKind.ACTION].fn is _noop
    assert _names(v1) == ["reserve", "book", "charge", "notify"]
    assert [s.name for s in compile_saga(v1).steps.values() if s.group == "book"] == [
        "book_a",
        "book_b",
    ]


def test_other_nodes_take_their_place_too() -> None:
    v1 = _base()
    v2 = v1.derive(version=2)
    v2.sleep("cool_down", timedelta(minutes=5), after="reserve")
    v2.wait_for("approved", after="charge")
    assert _names(v2) == ["reserve", "cool_down", "book", "charge", "approved", "notify"]


def test_a_group_can_be_placed_and_replaced_and_only_steps_join_one() -> None:
    v2 = _base().derive(version=2)
    with v2.parallel("ship", after="charge"):
        v2.step(name="ship_a", kind=StepKind.RETRIABLE, timeout=timedelta(seconds=5))(_noop)
        v2.step(name="ship_b", kind=StepKind.RETRIABLE, timeout=timedelta(seconds=5))(_noop)
    v2.step(name="book", replaces="book")(_noop).compensation(_noop)
    with pytest.raises(DefinitionError, match="only steps can be declared inside parallel"):
        v2.sleep("pause", timedelta(seconds=1), after="ship_a")
    with pytest.raises(DefinitionError, match="only steps can be declared inside parallel"):
        v2.sleep("pause", timedelta(seconds=1), replaces="ship_b")
    plan = compile_saga(v2)
    assert [n.name for n in plan.nodes] == ["reserve", "book", "charge", "ship", "notify"]
    assert [s.name for s in plan.steps.values() if s.group == "ship"] == ["ship_a", "ship_b"]
    assert "book_a" not in plan.steps


@pytest.mark.parametrize(
    ("change", "message", "step"),
    [
        (lambda v: v.remove("nofity"), "version 2: cannot remove 'nofity'", "nofity"),
        (
            lambda v: v.step(replaces="chrage")(_noop),
            "version 2: cannot replace 'chrage': there is no such step (its steps: reserve, "
            "book, book_a, book_b, charge, notify)",
            "chrage",
        ),
        (lambda v: v.step(after="x")(_noop), "version 2: cannot put a step after 'x'", "x"),
        (
            lambda v: v.step(name="y", after="reserve", replaces="charge")(_noop),
            "give after= or replaces=, not both",
            "y",
        ),
    ],
)
def test_changing_what_is_not_there_names_saga_version_and_step(
    change: object, message: str, step: str
) -> None:
    v2 = _base().derive(version=2)
    with pytest.raises(DefinitionError) as raised:
        change(v2)  # type: ignore[operator]
    assert message in str(raised.value)
    assert (raised.value.saga, raised.value.step) == ("job", step)


def test_deriving_an_existing_or_older_version_is_refused() -> None:
    v1 = _base()
    v2 = v1.derive(version=2)
    for base, version, reason in [
        (v1, 1, "a derived version must be newer than 1"),
        (v2, 1, "a derived version must be newer than 2"),
        (v1, 2, "it is already derived"),
        (v2.derive(version=3), 3, "a derived version must be newer than 3"),
        (v1, 3, "it is already derived"),
    ]:
        with pytest.raises(DefinitionError) as raised:
            base.derive(version=version)
        assert f"version {base.version}: cannot derive version {version}: {reason}" in str(
            raised.value
        )
        assert raised.value.saga == "job"


def test_a_derived_version_goes_through_the_compiler_checks() -> None:
    v2 = _base().derive(version=2)
    v2.step(name="late", after="charge")(_noop)  # compensatable after the pivot
    with pytest.raises(DefinitionError, match="comes after 'charge', the point of"):
        compile_saga(v2)


def test_a_replacement_is_restated_whole() -> None:
    v2 = _base().derive(version=2)
    v2.step(replaces="reserve")(_noop)  # without the compensation the old step had
    with pytest.raises(DefinitionError) as raised:
        compile_saga(v2)
    assert raised.value.step == "reserve"


def test_a_compiled_version_can_be_derived_from_but_not_changed() -> None:
    v1 = _base()
    compile_saga(v1)
    v2 = v1.derive(version=2)
    v2.remove("notify")
    assert _names(v2) == ["reserve", "book", "charge"]
    with pytest.raises(DefinitionError, match="already compiled"):
        v1.remove("notify")
