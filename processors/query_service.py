"""Answers about the workflows of the partitions a processor has restored: describe, list, query.

It reads the committed store (the processor writes it only after its Kafka transaction
commits) from the server's threads, never the processing thread, and answers only for
partitions it serves: while a partition is being restored or has been revoked, a question
about it gets :class:`NotServingError`, which the server turns into a retryable answer.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol

from processors.search_index import Listed, SearchIndex, matching
from processors.store.base import RangeReader
from processors.store.keys import parked_key, start_key, workflow_key
from processors.visibility_staging import earlier_runs
from sagas.engine.nodes import WaitNode
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError, WorkflowNotFoundError
from sagas.events import ErrorInfo
from sagas.visibility import QueryView
from sagas.workflow_search import WorkflowSearch
from topics.partitioning import partition_for


class NotServingError(SagaError):
    """The partition asked about is not (or not yet) served by this processor."""


class UnknownQueryError(SagaError):
    """The saga declares no query of that name."""


class QueryTimeoutError(SagaError):
    """A query function ran past its time limit."""


class QueryFunctionError(SagaError):
    """A query function raised; the message carries its error."""


class ReaderSource(Protocol):
    """Where a served partition is read: its store, or a secondary of it in another process."""

    def concurrent_reader(self) -> RangeReader: ...


class PartitionGates:
    """Which partitions are served, with a lock each so a revocation waits for readers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._serving: dict[int, tuple[threading.Lock, ReaderSource]] = {}
        self.partition_count = 0

    def serve(self, partition: int, store: ReaderSource, partition_count: int) -> None:
        """Start answering for a restored partition."""
        with self._lock:
            self.partition_count = partition_count
            self._serving[partition] = (threading.Lock(), store)

    def withdraw(self, partition: int) -> ReaderSource | None:
        """Stop answering for a partition; returns its source once no reader holds it."""
        with self._lock:
            entry = self._serving.pop(partition, None)
        if entry is None:
            return None
        with entry[0]:
            return entry[1]

    def served(self) -> list[int]:
        with self._lock:
            return sorted(self._serving)

    @contextmanager
    def reading(self, partition: int) -> Iterator[RangeReader]:
        """The store of a served partition, held open while the block reads it."""
        with self._lock:
            entry = self._serving.get(partition)
        if entry is None:
            raise NotServingError(f"partition {partition} is not served here (yet)")
        lock, store = entry
        with lock:
            with self._lock:
                if self._serving.get(partition) is not entry:
                    raise NotServingError(f"partition {partition} was just revoked")
            yield store.concurrent_reader()


class QueryService:
    """Describe, list and query the workflows of one saga in the partitions served here."""

    def __init__(
        self,
        versions: SagaVersions,
        gates: PartitionGates,
        *,
        query_timeout: timedelta = timedelta(seconds=2),
        query_threads: int = 4,
    ) -> None:
        self.versions = versions
        self.gates = gates
        self.index = SearchIndex(versions)
        self._timeout = query_timeout.total_seconds()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=query_threads, thread_name_prefix="saga-query"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _state(self, workflow_id: str) -> tuple[WorkflowState, bool] | None:
        with self.gates.reading(self._partition_of(workflow_id)) as reader:
            return _state_in(reader, workflow_id)

    def _partition_of(self, workflow_id: str) -> int:
        count = self.gates.partition_count
        if count <= 0:
            raise NotServingError("no partition is assigned yet")
        return partition_for(workflow_id.encode(), count)

    def describe(self, workflow_id: str) -> dict[str, Any]:
        """Everything the processor knows of one workflow.

        Raises :class:`WorkflowNotFoundError` when the store has no such workflow.
        """
        # One visit to the partition: the state, its park, its index summary (whose
        # attributes are those a list shows, without parsing the input again) and the
        # runs it continued from.
        with self.gates.reading(self._partition_of(workflow_id)) as reader:
            found = _state_in(reader, workflow_id)
            if found is None:
                raise self._not_found(workflow_id)
            state, parked = found
            summary = reader.get(start_key(state.started_ms, workflow_id))
            runs = earlier_runs(reader, workflow_id)
        attributes = (
            json.loads(summary)["a"] if summary is not None else self.index.attributes_of(state)
        )
        plan = self.versions.plans.get(state.version)
        record = plan.status_record(state) if plan is not None else state.status_record()
        return {
            "workflow_id": state.workflow_id,
            "saga": state.saga,
            "version": state.version,
            "status": state.status.value,
            "started_ms": state.started_ms,
            "updated_ms": state.updated_ms,
            "ended_ms": state.updated_ms if state.status.is_final else None,
            "current_steps": list(record.current_steps),
            "parked": parked,
            "run_id": state.run_id or None,
            "previous_run_id": state.previous_run_id,
            "steps": {
                name: {
                    "phase": run.phase.name,
                    "attempt": run.attempt,
                    "compensation_attempt": run.comp_attempt,
                    "error": _error(run.error),
                    "child": run.child,
                }
                for name, run in state.steps.items()
            },
            "completed": list(state.completed),
            "timers": dict(state.timers),
            "waits": [
                node.name
                for node in (plan.nodes if plan is not None else ())
                if isinstance(node, WaitNode) and node.name in record.current_steps
            ],
            "pending_signals": [name for name, _ in state.pending],
            "input": json.loads(state.input),
            "results": {n: json.loads(state.steps[n].result or "null") for n in state.completed},
            "signals": {n: json.loads(p) for n, p in state.signals.items()},
            "result": state.result,
            "error": _error(state.error),
            "failed_step": state.failed_step,
            "failed_compensation": state.failed_compensation,
            "last_rejection": state.last_rejection,
            "cancel": state.cancel,
            "attributes": attributes,
            "runs": [self._run(run) for run in runs],
        }

    def _run(self, run: WorkflowState) -> dict[str, Any]:
        """An earlier run that continued as new, kept for the retention period."""
        return {
            "run_id": run.run_id or None,
            "previous_run_id": run.previous_run_id,
            "status": "CONTINUED_AS_NEW",
            "started_ms": run.started_ms,
            "ended_ms": run.updated_ms,
            "input": json.loads(run.input),
            "results": {n: json.loads(run.steps[n].result or "null") for n in run.completed},
            "attributes": self.index.attributes_of(run),
        }

    def list(self, request: WorkflowSearch) -> dict[str, Any]:
        """The first ``limit`` matches of the served partitions, newest first.

        The partitions' matches are merged as they are read, so each partition is read
        no further than the page needs: a page of 100 reads about 100 summaries, not 100
        per partition.
        """
        conditions = self.index.conditions(request)
        answered: list[int] = []
        with contextlib.ExitStack() as held:
            streams = []
            for partition in self.gates.served():
                try:
                    reader = held.enter_context(self.gates.reading(partition))
                except NotServingError:
                    continue  # revoked meanwhile: the client sees it unanswered and retries
                answered.append(partition)
                streams.append(matching(reader, request, conditions))
            merged = heapq.merge(*streams, key=_newest_first)
            items = [
                {"workflow_id": f.workflow_id, **_listed(f.summary)}
                for f in itertools.islice(merged, request.limit)
            ]
        return {
            "partitions": answered,
            "partition_count": self.gates.partition_count,
            "items": items,
        }

    def _not_found(self, workflow_id: str) -> WorkflowNotFoundError:
        return WorkflowNotFoundError(
            f"no workflow {workflow_id!r} in saga {self.versions.name!r}",
            saga=self.versions.name,
            workflow_id=workflow_id,
        )

    def query(self, workflow_id: str, name: str) -> Any:
        """The value of query ``name`` for one workflow, evaluated off the processing
        thread on a copy of its committed state, within the time limit.

        Raises :class:`WorkflowNotFoundError` when the store has no such workflow.
        """
        found = self._state(workflow_id)
        if found is None:
            raise self._not_found(workflow_id)
        state, _ = found
        plan = self.versions.plans.get(state.version)
        function = plan.visibility.queries.get(name) if plan is not None else None
        if plan is None or function is None:
            known = ", ".join(sorted(plan.visibility.queries)) if plan is not None else ""
            raise UnknownQueryError(
                f"saga version {state.version} declares no query {name!r} "
                f"(declared: {known or 'none'})",
                saga=self.versions.name,
                workflow_id=workflow_id,
            )
        view: QueryView[Any] = QueryView(
            types=plan.types,
            workflow_id=state.workflow_id,
            version=state.version,
            input_json=state.input,
            results={n: json.loads(state.steps[n].result or "null") for n in state.completed},
            signals={n: json.loads(p) for n, p in state.signals.items()},
            status=state.status.value,
            current_steps=plan.status_record(state).current_steps,
        )
        future = self._pool.submit(function, view)
        try:
            value = future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise QueryTimeoutError(
                f"query {name!r} ran past its limit of {self._timeout:g} s",
                saga=self.versions.name,
                workflow_id=workflow_id,
            ) from exc
        except Exception as exc:
            raise QueryFunctionError(
                f"query {name!r} raised {type(exc).__name__}: {exc}",
                saga=self.versions.name,
                workflow_id=workflow_id,
            ) from exc
        try:
            return json.loads(json.dumps(value, default=_jsonable))
        except (TypeError, ValueError) as exc:
            raise QueryFunctionError(
                f"query {name!r} returned a value that is not JSON: {exc}",
                saga=self.versions.name,
                workflow_id=workflow_id,
            ) from exc


def _jsonable(value: object) -> object:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _state_in(reader: RangeReader, workflow_id: str) -> tuple[WorkflowState, bool] | None:
    """The workflow's state and whether it is parked, or ``None`` if the store has none."""
    data = reader.get(workflow_key(workflow_id))
    if data is None:
        return None
    return WorkflowState.from_bytes(data), reader.get(parked_key(workflow_id)) is not None


def _newest_first(listed: Listed) -> tuple[int, str]:
    return -listed.summary["st"], listed.workflow_id


def _listed(summary: dict[str, Any] | Any) -> dict[str, Any]:
    return {
        "version": summary["v"],
        "status": summary["s"],
        "started_ms": summary["st"],
        "updated_ms": summary["u"],
        "ended_ms": summary["e"],
        "current_steps": summary["c"],
        "parked": summary["p"],
        "attributes": summary["a"],
    }


def _error(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "non_retryable": error.non_retryable}
