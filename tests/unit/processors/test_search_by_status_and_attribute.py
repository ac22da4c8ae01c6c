"""Lists by status and attribute, and pages merged across partitions.

An attribute entry holds its workflow's status, rewritten when the status moves, so a
list of one status and one attribute value passes over the workflows of other statuses
without reading their summaries; an entry written before entries held the status (empty)
is still read through its summary. A page is merged across the served partitions as they
are read: it reads about as many summaries as it holds, not a page per partition.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from processors.query_service import PartitionGates, QueryService
from processors.search_index import SearchIndex, matching
from processors.store.base import RangeReader
from processors.store.keys import ATTRIBUTE_INDEX, START_INDEX, prefix_end
from processors.store.memory import MemoryPartitionStore
from processors.store.transaction import StoreTransaction
from sagas import Saga, StepContext, StepKind
from sagas.engine.state import WorkflowState
from sagas.engine.versions import compile_versions
from sagas.testing import SagaTestEnvironment
from sagas.visibility import SearchAttribute
from sagas.workflow_search import AttributeFilter, WorkflowSearch


class Order(BaseModel):
    customer_id: str


saga = Saga(
    "index-status",
    input=Order,
    search_attributes=[SearchAttribute("customer_id", str, lambda order: order.customer_id)],
)


@saga.step
def charge(ctx: StepContext[Order]) -> None:
    return None


@charge.compensation
def refund(ctx: StepContext[Order]) -> None:
    return None


@saga.step(kind=StepKind.PIVOT)
def ship(ctx: StepContext[Order]) -> None:
    return None


VERSIONS = compile_versions(saga)


def _first_and_last(customer: str, workflow_id: str) -> tuple[WorkflowState, WorkflowState]:
    """The workflow's state once started (RUNNING) and once ended (COMPLETED)."""
    with SagaTestEnvironment(saga) as env:
        history = env.history(env.start(Order(customer_id=customer), workflow_id=workflow_id))
    states = [VERSIONS.newest.fold(history[:n]) for n in range(1, len(history) + 1)]
    started = [state for state in states if state is not None]
    running, completed = started[0], started[-1]
    assert (running.status.value, completed.status.value) == ("RUNNING", "COMPLETED")
    return running, completed


def _stage(store: MemoryPartitionStore, index: SearchIndex, state: WorkflowState) -> None:
    txn = StoreTransaction(store)
    index.stage(txn, state, parked=False, current_steps=())
    txn.commit(None)


def _attribute_values(store: MemoryPartitionStore) -> list[bytes]:
    return [v for _, v in store.iter_range(ATTRIBUTE_INDEX, prefix_end(ATTRIBUTE_INDEX))]


def _listed(store: RangeReader, index: SearchIndex, status: str, customer: str) -> list[str]:
    request = WorkflowSearch(
        status=(status,), where=(AttributeFilter("customer_id", "=", customer),)
    )
    return [f.workflow_id for f in matching(store, request, index.conditions(request))]


class CountingReader:
    """A reader that counts the summaries read (gets of start-index keys)."""

    def __init__(self, reader: RangeReader) -> None:
        self.reader = reader
        self.summaries = 0

    def get(self, key: bytes) -> bytes | None:
        if key.startswith(START_INDEX):
            self.summaries += 1
        return self.reader.get(key)

    def iter_range(
        self, start: bytes, stop: bytes | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return self.reader.iter_range(start, stop, limit=limit)


class CountedStore(MemoryPartitionStore):
    """A partition store whose query readers count what they read."""

    def __init__(self, partition: int) -> None:
        super().__init__(partition)
        self.readers: list[CountingReader] = []

    def concurrent_reader(self) -> RangeReader:
        reader = CountingReader(super().concurrent_reader())
        self.readers.append(reader)
        return reader


def test_attribute_entries_hold_the_status_and_follow_it() -> None:
    store = MemoryPartitionStore()
    index = SearchIndex(VERSIONS)
    running, completed = _first_and_last("c-1", "wf-1")
    _stage(store, index, running)
    assert _attribute_values(store) == [b"RUNNING"]
    assert _listed(store, index, "RUNNING", "c-1") == ["wf-1"]
    assert _listed(store, index, "COMPLETED", "c-1") == []
    _stage(store, index, completed)
    assert _attribute_values(store) == [b"COMPLETED"]
    assert _listed(store, index, "RUNNING", "c-1") == []
    assert _listed(store, index, "COMPLETED", "c-1") == ["wf-1"]


def test_a_list_by_status_and_attribute_reads_only_the_summaries_of_that_status() -> None:
    store = MemoryPartitionStore()
    index = SearchIndex(VERSIONS)
    for n in range(40):
        running, completed = _first_and_last("c-1", f"wf-{n:02d}")
        _stage(store, index, running)
        if n % 10:  # one in ten stays running
            _stage(store, index, completed)
    reader = CountingReader(store.concurrent_reader())
    assert _listed(reader, index, "RUNNING", "c-1") == ["wf-00", "wf-10", "wf-20", "wf-30"]
    assert reader.summaries == 4


def test_entries_written_without_the_status_are_read_through_their_summary() -> None:
    store = MemoryPartitionStore()
    index = SearchIndex(VERSIONS)
    for n, wid in enumerate(("wf-a", "wf-b")):
        running, completed = _first_and_last("c-1", wid)
        _stage(store, index, completed if n else running)
    # As an earlier version wrote them: the attribute entries empty.
    txn = StoreTransaction(store)
    for key, _ in store.iter_range(ATTRIBUTE_INDEX, prefix_end(ATTRIBUTE_INDEX)):
        txn.set(key, b"")
    txn.commit(None)
    assert _attribute_values(store) == [b"", b""]
    assert _listed(store, index, "RUNNING", "c-1") == ["wf-a"]
    assert _listed(store, index, "COMPLETED", "c-1") == ["wf-b"]


def test_a_page_is_merged_across_partitions_newest_first_reading_about_a_page() -> None:
    index = SearchIndex(VERSIONS)
    gates = PartitionGates()
    stores = [CountedStore(p) for p in range(3)]
    for p, store in enumerate(stores):
        gates.serve(p, store, 3)
    every: list[WorkflowState] = []
    for n in range(60):
        _, completed = _first_and_last("c-1", f"wf-{n:02d}")
        _stage(stores[n % 3], index, completed)
        every.append(completed)
    service = QueryService(VERSIONS, gates)
    try:
        request = WorkflowSearch(
            status=("COMPLETED",), where=(AttributeFilter("customer_id", "=", "c-1"),), limit=7
        )
        page = service.list(request)
    finally:
        service.close()
    newest = sorted(every, key=lambda s: (-s.started_ms, s.workflow_id))[:7]
    assert [item["workflow_id"] for item in page["items"]] == [s.workflow_id for s in newest]
    assert sorted(page["partitions"]) == [0, 1, 2]
    read = sum(r.summaries for store in stores for r in store.readers)
    # The page's 7, and at most one read ahead in each partition by the merge.
    assert 7 <= read <= 7 + 3
