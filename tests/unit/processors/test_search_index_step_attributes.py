"""The index merges the search attributes steps set into a workflow's entries in the same
write as its state: a changed value moves its entry, the input's values stay."""

from __future__ import annotations

from pydantic import BaseModel

from processors.search_index import SearchIndex, matching
from processors.store.keys import ATTRIBUTE_INDEX
from processors.store.memory import MemoryPartitionStore
from processors.store.transaction import StoreTransaction
from sagas import Saga, StepContext, StepKind
from sagas.engine.state import WorkflowState
from sagas.engine.versions import compile_versions
from sagas.events import EventType
from sagas.testing import SagaTestEnvironment
from sagas.visibility import SearchAttribute
from sagas.workflow_search import AttributeFilter, WorkflowSearch


class Order(BaseModel):
    customer_id: str = "c-1"


saga = Saga(
    "index-attrs",
    input=Order,
    search_attributes=[
        SearchAttribute("customer_id", str, lambda order: order.customer_id),
        SearchAttribute("total", int),
    ],
)


@saga.step
def price(ctx: StepContext[Order]) -> None:
    ctx.set_search_attribute("total", 120)


@price.compensation
def unprice(ctx: StepContext[Order]) -> None:
    return None


@saga.step(kind=StepKind.PIVOT)
def adjust(ctx: StepContext[Order]) -> None:
    ctx.set_search_attribute("total", 130)


VERSIONS = compile_versions(saga)


def _states() -> list[WorkflowState]:
    """The workflow's state after each event of its log, once it has started."""
    with SagaTestEnvironment(saga) as env:
        history = env.history(env.start(Order(), workflow_id="wf-1"))
    states = []
    for n in range(1, len(history) + 1):
        state = VERSIONS.newest.fold(history[:n])
        if state is not None:
            states.append(state)
    assert [e.type for e in history].count(EventType.STEP_SUCCEEDED) == 2
    return states


def _found(store: MemoryPartitionStore, index: SearchIndex, value: int) -> list[str]:
    request = WorkflowSearch(where=(AttributeFilter("total", "=", value),))
    return [f.workflow_id for f in matching(store, request, index.conditions(request))]


def test_each_write_indexes_the_values_the_state_holds_and_drops_stale_entries() -> None:
    store = MemoryPartitionStore()
    index = SearchIndex(VERSIONS)
    seen: set[object] = set()
    for state in _states():
        txn = StoreTransaction(store)
        index.stage(txn, state, parked=False, current_steps=())
        txn.commit(None)
        total = state.search_attributes.get("total")
        seen.add(total)
        assert _found(store, index, 120) == (["wf-1"] if total == 120 else [])
        assert _found(store, index, 130) == (["wf-1"] if total == 130 else [])
        entries = [k for k, _ in store.iter_range(ATTRIBUTE_INDEX, b"ib")]
        assert len(entries) == (1 if total is None else 2)  # customer_id, and total if set
    assert seen == {None, 120, 130}
    assert index.attributes_of(state) == {"customer_id": "c-1", "total": 130}
