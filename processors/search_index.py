"""The secondary indexes of a partition's workflows, staged in the same write as the state.

Three indexes (their keys: :mod:`processors.store.keys`): by start time, whose entry
holds the workflow's summary (JSON: version, status, start and end, current steps,
parked, search attributes); by status; by search attribute value, whose entry holds the
workflow's status.

So a list is a range scan in start order (newest first) of the most selective index the
request allows, every other condition checked on the summary. An attribute entry's status
lets a list by status and attribute pass over the workflows of other statuses without
reading their summaries: "the running orders of customer c-42" reads the summaries of the
running ones only. The summary also tells which status and attribute keys a workflow
had, so a change deletes the stale ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from processors.store.base import RangeReader
from processors.store.keys import (
    ATTRIBUTE_INDEX,
    START_INDEX,
    attribute_key,
    attribute_prefix,
    entry_end,
    indexed_workflow_id,
    prefix_end,
    start_key,
    started_bound,
    status_key,
    status_prefix,
    summary_key_of,
    workflow_key,
)
from processors.store.transaction import StoreTransaction
from sagas.compact_json import compact_json
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError
from sagas.events import WorkflowStatus
from sagas.visibility import SearchAttribute, SearchValue, attribute_value, coerce
from sagas.workflow_search import WorkflowSearch, parse_cursor

log = logging.getLogger(__name__)


def count_in_flight(reader: RangeReader) -> int:
    """How many workflows of a partition are running or compensating (a scan of the status
    index: run it on assignment, not per batch)."""
    count = 0
    for status in (WorkflowStatus.RUNNING, WorkflowStatus.COMPENSATING):
        prefix = status_prefix(status.value)
        count += sum(1 for _ in reader.iter_range(prefix, prefix_end(prefix)))
    return count


def _index_keys(summary: Mapping[str, Any], workflow_id: str) -> set[bytes]:
    started = summary["st"]
    keys = {start_key(started, workflow_id), status_key(summary["s"], started, workflow_id)}
    for name, value in summary["a"].items():
        keys.add(attribute_key(name, value, started, workflow_id))
    return keys


class SearchIndex:
    """Keeps the index entries of the workflows of one saga (every deployed version)."""

    def __init__(self, versions: SagaVersions) -> None:
        self.attributes: dict[int, Mapping[str, SearchAttribute[Any]]] = {
            version: plan.visibility.attributes for version, plan in versions.plans.items()
        }
        self._versions = versions
        newest = versions.plans[max(versions.plans)].visibility.attributes
        self.declared: dict[str, SearchAttribute[Any]] = {}
        for declared in self.attributes.values():
            self.declared.update(declared)
        self.declared.update(newest)  # the newest version's type wins a disagreement

    def stage(
        self,
        txn: StoreTransaction,
        state: WorkflowState,
        *,
        parked: bool,
        current_steps: tuple[str, ...],
    ) -> bool:
        """Stage the index entries of ``state`` into ``txn`` (the batch's own write).

        Returns whether the workflow has just ended (it was not indexed as ended before).
        """
        wid = state.workflow_id
        key = start_key(state.started_ms, wid)
        old_bytes = txn.get(key)
        old = json.loads(old_bytes) if old_bytes is not None else None
        # Input values are read once; step-set values change with the state, in this write.
        if old is None:
            attributes = self.attributes_of(state)
        elif state.search_attributes:
            attributes = {**old["a"], **state.search_attributes}
        else:
            attributes = old["a"]
        final = state.status.is_final
        summary = {
            "v": state.version,
            "s": state.status.value,
            "st": state.started_ms,
            "u": state.updated_ms,
            "e": state.updated_ms if final else None,
            "c": list(current_steps),
            "p": parked,
            "a": attributes,
        }
        new_bytes = compact_json(summary).encode()
        if new_bytes == old_bytes:
            return False
        txn.set(key, new_bytes)
        new_keys = _index_keys(summary, wid)
        old_keys = _index_keys(old, wid) if old is not None else set()
        for stale in old_keys - new_keys:
            txn.delete(stale)
        status = state.status.value.encode()
        # Attribute entries carry the status: a status change rewrites them all.
        moved = old is None or old["s"] != summary["s"]
        for entry in new_keys:
            if entry == key:
                continue
            if entry.startswith(ATTRIBUTE_INDEX):
                if moved or entry not in old_keys:
                    txn.set(entry, status)
            elif entry not in old_keys:
                txn.set(entry, b"")
        return final and (old is None or old["e"] is None)

    def remove(self, txn: StoreTransaction, state: WorkflowState) -> None:
        """Stage the removal of the workflow's state and every index entry of it."""
        self.unindex(txn, state)
        txn.delete(workflow_key(state.workflow_id))

    def unindex(self, txn: StoreTransaction, state: WorkflowState) -> None:
        """Stage the removal of the index entries of ``state``'s run (those of its start)."""
        wid = state.workflow_id
        old = txn.get(start_key(state.started_ms, wid))
        if old is not None:
            for stale in _index_keys(json.loads(old), wid):
                txn.delete(stale)

    def attributes_of(self, state: WorkflowState) -> dict[str, SearchValue]:
        """The workflow's search attributes: those read from its input, then those its
        steps set."""
        return {**self.input_attributes_of(state), **state.search_attributes}

    def input_attributes_of(self, state: WorkflowState) -> dict[str, SearchValue]:
        """The values of the attributes the workflow's version reads from its input."""
        declared = self.attributes.get(state.version, {})
        if not any(attribute.from_input is not None for attribute in declared.values()):
            return {}
        plan = self._versions.plans[state.version]
        try:
            model = plan.types.parse_input(state.input)
        except Exception as exc:  # an input the plan accepted parses; say so if not
            log.warning("workflow %s: cannot read its input for search attributes: %s",
                        state.workflow_id, exc)  # fmt: skip
            return {}
        values: dict[str, SearchValue] = {}
        for name, attribute in declared.items():
            try:
                value = attribute_value(attribute, model)
            except SagaError as exc:
                # Indexing must not fail a workflow: it goes unlisted by this attribute.
                log.warning("workflow %s: %s", state.workflow_id, exc)
                continue
            if value is not None:
                values[name] = value
        return values

    def conditions(self, search: WorkflowSearch) -> list[tuple[str, str, SearchValue]]:
        """The request's attribute filters with values of the declared types.

        Raises :class:`SagaError` naming an attribute the saga does not declare.
        """
        checked: list[tuple[str, str, SearchValue]] = []
        for condition in search.where:
            attribute = self.declared.get(condition.name)
            if attribute is None:
                known = ", ".join(sorted(self.declared)) or "none"
                raise SagaError(
                    f"saga declares no search attribute {condition.name!r} (declared: {known})",
                    saga=self._versions.name,
                )
            checked.append((condition.name, condition.op, coerce(attribute, condition.value)))
        return checked


@dataclass(frozen=True, slots=True)
class Listed:
    """One workflow found by a list request, with the summary it is shown by."""

    workflow_id: str
    summary: Mapping[str, Any]


def matching(
    reader: RangeReader,
    search: WorkflowSearch,
    conditions: list[tuple[str, str, SearchValue]],
) -> Iterator[Listed]:
    """The workflows of one partition matching ``search``, newest first, read as taken:
    a caller merging partitions reads no further in each than the page it fills."""
    equality = next(((n, v) for n, op, v in conditions if op == "="), None)
    if equality is not None:
        prefix = attribute_prefix(equality[0], equality[1])
    elif len(search.status) == 1:
        prefix = status_prefix(search.status[0])
    else:
        prefix = START_INDEX
    for wid, summary in _scan(reader, prefix, search):
        if _matches(summary, search, conditions):
            yield Listed(wid, summary)


def _scan(
    reader: RangeReader, prefix: bytes, search: WorkflowSearch
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    start = prefix
    if search.started_until_ms is not None:
        start = started_bound(prefix, search.started_until_ms - 1)
    if search.cursor is not None:
        started, wid = parse_cursor(search.cursor)
        start = max(start, entry_end(prefix, started, wid))
    since = search.started_since_ms
    if since is not None and since > 0:
        # started >= since: every entry before the bound of the instant before ``since``.
        stop = started_bound(prefix, since - 1)
    else:
        stop = prefix_end(prefix)
    direct = prefix == START_INDEX
    # Statuses an attribute entry may hold and still match (none: any status may).
    wanted = {s.encode() for s in search.status} if prefix.startswith(ATTRIBUTE_INDEX) else None
    for key, value in reader.iter_range(start, stop):
        if direct:
            yield indexed_workflow_id(key, prefix), json.loads(value)
            continue
        # An empty value is an entry written before entries held the status.
        if wanted and value and value not in wanted:
            continue
        # The summary may have moved on since the secondary entry was read: the caller
        # checks every condition on the summary, so a stale entry is only ever skipped.
        found = reader.get(summary_key_of(key, prefix))
        if found is not None:
            yield indexed_workflow_id(key, prefix), json.loads(found)


def _matches(
    summary: Mapping[str, Any],
    search: WorkflowSearch,
    conditions: list[tuple[str, str, SearchValue]],
) -> bool:
    if search.status and summary["s"] not in search.status:
        return False
    if search.version is not None and summary["v"] != search.version:
        return False
    if search.step is not None and search.step not in summary["c"]:
        return False
    if search.parked is not None and bool(summary["p"]) != search.parked:
        return False
    started = summary["st"]
    if search.started_since_ms is not None and started < search.started_since_ms:
        return False
    if search.started_until_ms is not None and started >= search.started_until_ms:
        return False
    ended = summary["e"]
    if search.ended_since_ms is not None and (ended is None or ended < search.ended_since_ms):
        return False
    if search.ended_until_ms is not None and (ended is None or ended >= search.ended_until_ms):
        return False
    attributes = summary["a"]
    return all(_compare(attributes.get(n), op, v) for n, op, v in conditions)


def _compare(have: object, op: str, want: SearchValue) -> bool:
    if have is None:
        return op == "!="
    if isinstance(want, str) != isinstance(have, str):
        return False
    try:
        if op == "=":
            return have == want
        if op == "!=":
            return have != want
        if op == ">=":
            return have >= want  # type: ignore[operator]
        if op == ">":
            return have > want  # type: ignore[operator]
        if op == "<=":
            return have <= want  # type: ignore[operator]
        return have < want  # type: ignore[operator]
    except TypeError:
        return False
