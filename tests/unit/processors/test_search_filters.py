"""Every filter of a list, each against workflows that differ in what it filters on:
version, current step, parked, the started and ended time ranges (since inclusive, until
exclusive, as `sagas list --since/--until` and `--ended-since/--ended-until` document),
the attribute comparisons, and pages of a time range continued by their cursor."""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel

from processors.query_service import PartitionGates, QueryService
from processors.search_index import SearchIndex, matching
from processors.store.memory import MemoryPartitionStore
from processors.store.transaction import StoreTransaction
from sagas import Saga, StepContext, StepKind
from sagas.engine.state import WorkflowState
from sagas.engine.versions import compile_versions
from sagas.testing import SagaTestEnvironment
from sagas.visibility import SearchAttribute
from sagas.workflow_search import AttributeFilter, WorkflowSearch, cursor_of


class Order(BaseModel):
    total: int


def _saga(version: int) -> Saga[Order]:
    saga = Saga(
        "index-filters",
        input=Order,
        version=version,
        search_attributes=[SearchAttribute("total", int, lambda order: order.total)],
    )

    @saga.step(kind=StepKind.PIVOT)
    def ship(ctx: StepContext[Order]) -> None:
        return None

    return saga


VERSIONS = compile_versions([_saga(1), _saga(2)])


def _running_and_completed() -> tuple[WorkflowState, WorkflowState]:
    with SagaTestEnvironment(_saga(2)) as env:
        history = env.history(env.start(Order(total=0), workflow_id="template"))
    states = [VERSIONS.newest.fold(history[:n]) for n in range(1, len(history) + 1)]
    started = [s for s in states if s is not None]
    return started[0], started[-1]


RUNNING, COMPLETED = _running_and_completed()

# workflow id: (started ms, ended ms or None, version, parked, current steps, total)
WORKFLOWS: dict[str, tuple[int, int | None, int, bool, tuple[str, ...], int]] = {
    "wf-a": (1_000, None, 1, False, ("ship",), 10),
    "wf-b": (2_000, 5_000, 1, False, (), 20),
    "wf-c": (3_000, 6_000, 2, False, (), 30),
    "wf-d": (3_000, None, 2, True, ("ship",), 40),
    "wf-e": (4_000, 9_000, 2, False, (), 50),
}


def _store() -> tuple[MemoryPartitionStore, SearchIndex]:
    store = MemoryPartitionStore()
    index = SearchIndex(VERSIONS)
    txn = StoreTransaction(store)
    for wid, (started, ended, version, parked, steps, total) in WORKFLOWS.items():
        template = RUNNING if ended is None else COMPLETED
        state = replace(
            template,
            workflow_id=wid,
            version=version,
            started_ms=started,
            updated_ms=started if ended is None else ended,
            input=Order(total=total).model_dump_json(),
        )
        index.stage(txn, state, parked=parked, current_steps=steps)
    txn.commit(None)
    return store, index


def _listed(**search: object) -> list[str]:
    store, index = _store()
    request = WorkflowSearch(**search)  # type: ignore[arg-type]
    return [found.workflow_id for found in matching(store, request, index.conditions(request))]


def test_everything_is_listed_newest_first_then_by_id() -> None:
    assert _listed() == ["wf-e", "wf-c", "wf-d", "wf-b", "wf-a"]


def test_started_ranges_include_since_and_exclude_until() -> None:
    assert _listed(started_since_ms=3_000) == ["wf-e", "wf-c", "wf-d"]
    assert _listed(started_until_ms=3_000) == ["wf-b", "wf-a"]
    assert _listed(started_since_ms=2_000, started_until_ms=4_000) == ["wf-c", "wf-d", "wf-b"]
    assert _listed(started_since_ms=3_000, started_until_ms=3_001) == ["wf-c", "wf-d"]
    assert _listed(started_since_ms=4_001) == []


def test_ended_ranges_list_only_ended_workflows() -> None:
    assert _listed(ended_since_ms=6_000) == ["wf-e", "wf-c"]
    assert _listed(ended_until_ms=6_000) == ["wf-b"]
    assert _listed(ended_since_ms=0) == ["wf-e", "wf-c", "wf-b"]
    assert _listed(ended_since_ms=5_001, ended_until_ms=9_000) == ["wf-c"]


def test_version_step_and_parked() -> None:
    assert _listed(version=2) == ["wf-e", "wf-c", "wf-d"]
    assert _listed(version=3) == []
    assert _listed(step="ship") == ["wf-d", "wf-a"]
    assert _listed(parked=True) == ["wf-d"]
    assert _listed(parked=False) == ["wf-e", "wf-c", "wf-b", "wf-a"]


def test_attribute_comparisons_with_status_and_time() -> None:
    def where(*conditions: tuple[str, object]) -> tuple[AttributeFilter, ...]:
        return tuple(AttributeFilter("total", op, value) for op, value in conditions)  # type: ignore[arg-type]

    assert _listed(where=where((">", 20), ("!=", 40))) == ["wf-e", "wf-c"]
    assert _listed(where=where((">=", 20), ("<=", 40))) == ["wf-c", "wf-d", "wf-b"]
    assert _listed(where=where(("<", 20))) == ["wf-a"]
    assert _listed(where=where(("=", 40)), parked=True) == ["wf-d"]
    assert _listed(status=("COMPLETED",), started_until_ms=4_000) == ["wf-c", "wf-b"]
    assert _listed(status=("RUNNING",), where=where((">", 10))) == ["wf-d"]


def test_pages_of_a_time_range_continue_by_their_cursor() -> None:
    store, _ = _store()
    gates = PartitionGates()
    gates.serve(0, store, 1)
    service = QueryService(VERSIONS, gates)
    try:
        search = WorkflowSearch(started_since_ms=2_000, started_until_ms=4_000, limit=2)
        first = service.list(search)["items"]
        assert [item["workflow_id"] for item in first] == ["wf-c", "wf-d"]
        # The cursor a client makes of a full page: where its last item is.
        after = cursor_of(first[-1]["started_ms"], first[-1]["workflow_id"])
        second = service.list(replace(search, cursor=after))["items"]
        assert [item["workflow_id"] for item in second] == ["wf-b"]
    finally:
        service.close()
