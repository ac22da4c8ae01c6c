"""Searching and paging workflow statuses held in memory (the status-topic scan)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from sagas.dashboard.seams import WorkflowPage, WorkflowQuery
from sagas.events import StatusRecord, WorkflowStatus


def select(records: Iterable[StatusRecord], query: WorkflowQuery) -> WorkflowPage:
    """The page of ``records`` matching ``query``: id containing the text, with the status.

    Newest update first (then by id, so that pages are stable); a page past the last one
    answers with the last page.
    """
    text = query.text.strip().lower()
    matching = sorted(
        (
            r
            for r in records
            if (query.status is None or r.status is query.status)
            and (not text or text in r.workflow_id.lower())
        ),
        key=lambda r: (-r.updated_ms, r.workflow_id),
    )
    size = max(query.page_size, 1)
    pages = max((len(matching) + size - 1) // size, 1)
    page = min(max(query.page, 1), pages)
    rows = tuple(matching[(page - 1) * size : page * size])
    return WorkflowPage(rows=rows, total=len(matching), page=page, pages=pages)


def count_by_status(records: Iterable[StatusRecord]) -> Mapping[WorkflowStatus, int]:
    """How many of ``records`` stand in each status; every status is present."""
    counted = Counter(r.status for r in records)
    return {status: counted.get(status, 0) for status in WorkflowStatus}
