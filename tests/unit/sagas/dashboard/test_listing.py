from sagas.dashboard.listing import count_by_status, select
from sagas.dashboard.seams import WorkflowQuery
from sagas.events import StatusRecord, WorkflowStatus


def record(wid: str, status: WorkflowStatus, updated: int) -> StatusRecord:
    return StatusRecord(wid, "shop", 1, status, started_ms=1, updated_ms=updated)


RECORDS = [
    record("order-1", WorkflowStatus.COMPLETED, 10),
    record("order-2", WorkflowStatus.COMPENSATED, 30),
    record("ORDER-3", WorkflowStatus.COMPLETED, 20),
    record("refund-1", WorkflowStatus.RUNNING, 40),
]


def ids(query: WorkflowQuery) -> list[str]:
    return [r.workflow_id for r in select(RECORDS, query).rows]


def test_newest_update_first() -> None:
    assert ids(WorkflowQuery("shop")) == ["refund-1", "order-2", "ORDER-3", "order-1"]


def test_search_by_id_text_ignores_case_and_combines_with_status() -> None:
    assert ids(WorkflowQuery("shop", text="order")) == ["order-2", "ORDER-3", "order-1"]
    assert ids(WorkflowQuery("shop", text=" order ", status=WorkflowStatus.COMPLETED)) == [
        "ORDER-3",
        "order-1",
    ]
    assert ids(WorkflowQuery("shop", text="nothing")) == []


def test_pages_split_the_matches_and_clamp_past_the_end() -> None:
    first = select(RECORDS, WorkflowQuery("shop", page_size=3))
    assert (first.total, first.pages, first.page, len(first.rows)) == (4, 2, 1, 3)
    last = select(RECORDS, WorkflowQuery("shop", page=9, page_size=3))
    assert (last.page, [r.workflow_id for r in last.rows]) == (2, ["order-1"])
    empty = select([], WorkflowQuery("shop", page=0))
    assert (empty.page, empty.pages, empty.rows) == (1, 1, ())


def test_counts_name_every_status() -> None:
    counts = count_by_status(RECORDS)
    assert set(counts) == set(WorkflowStatus)
    assert counts[WorkflowStatus.COMPLETED] == 2
    assert counts[WorkflowStatus.FAILED] == 0
