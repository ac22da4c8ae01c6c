"""What a batch stages for visibility beside a workflow's state: index entries and retention.

An ended workflow gets one durable timer in the partition's due-time index, at its end
plus the retention period; when it fires (in the transactional path, like every timer),
the workflow's state and index entries are deleted (tombstones on the changelog) and its
status record is tombstoned, so storage is bounded by workflows in flight plus retention.
A run that continued as new has ended too: its last state is kept under its run id, with
a timer of its own, for the same period, so that it can still be described.
"""

from __future__ import annotations

from datetime import timedelta

from processors.outgoing_records import Outgoing
from processors.search_index import SearchIndex
from processors.store.base import RangeReader
from processors.store.keys import TimerEntry, prefix_end, run_key, runs_prefix, timer_key
from processors.store.transaction import StoreTransaction
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions

RETENTION_TIMER_ID = "x:retention"
"""The timer id of an ended workflow's removal (no timer of a plan has an ``x:`` id)."""
RUN_RETENTION_PREFIX = "x:run:"
"""Before a run id: the timer id of the removal of a run that continued as new."""


class VisibilityStaging:
    """Stages index entries and retention timers for the workflows of one saga."""

    def __init__(self, versions: SagaVersions, retention: timedelta | None = None) -> None:
        """``retention`` is the deployment's period; it overrides the sagas' own."""
        self.index = SearchIndex(versions)
        self._versions = versions
        self._retention = retention

    def retention_ms(self, version: int) -> int | None:
        """How long an ended workflow of ``version`` is kept, in ms (``None``: for ever)."""
        period = self._retention
        if period is None:
            plan = self._versions.plans.get(version)
            period = plan.visibility.retention if plan is not None else None
        return None if period is None else int(period.total_seconds() * 1000)

    def stage(self, txn: StoreTransaction, state: WorkflowState, *, parked: bool) -> int | None:
        """Stage the index entries of ``state``; returns the due time of a retention timer
        staged because the workflow has just ended, else ``None``."""
        plan = self._versions.plans.get(state.version)
        current = (
            plan.status_record(state).current_steps
            if plan is not None
            else state.status_record().current_steps
        )
        ended = self.index.stage(txn, state, parked=parked, current_steps=current)
        if not ended:
            return None
        keep = self.retention_ms(state.version)
        if keep is None:
            return None
        due = state.updated_ms + keep
        txn.set(timer_key(due, state.workflow_id, RETENTION_TIMER_ID), b"")
        return due

    def keep_run(self, txn: StoreTransaction, ended: WorkflowState) -> int | None:
        """Keep the last state of a run that continued as new; returns the due time of its
        removal, or ``None`` when ended workflows are kept for ever.

        Its index entries go: they are keyed by the run's start, and a list shows the
        workflow once, by the run it is in now.
        """
        wid = ended.workflow_id
        self.index.unindex(txn, ended)
        txn.set(run_key(wid, ended.run_id), ended.to_bytes())
        keep = self.retention_ms(ended.version)
        if keep is None:
            return None
        due = ended.updated_ms + keep
        txn.set(timer_key(due, wid, RUN_RETENTION_PREFIX + ended.run_id), b"")
        return due

    @staticmethod
    def is_run_expiry(entry: TimerEntry) -> bool:
        """Whether a due timer is the removal of a run that continued as new."""
        return entry.timer_id.startswith(RUN_RETENTION_PREFIX)

    @staticmethod
    def expire_run(txn: StoreTransaction, entry: TimerEntry) -> None:
        """Stage the removal of an earlier run whose retention is over, and of its timer."""
        run_id = entry.timer_id[len(RUN_RETENTION_PREFIX) :]
        txn.delete(run_key(entry.workflow_id, run_id))
        txn.delete(entry.key)

    @staticmethod
    def is_expiry(entry: TimerEntry) -> bool:
        """Whether a due timer is a workflow's removal."""
        return entry.timer_id == RETENTION_TIMER_ID

    def expire(self, txn: StoreTransaction, state: WorkflowState, status_topic: str) -> Outgoing:
        """Stage the removal of an ended workflow; returns its status record's tombstone."""
        self.index.remove(txn, state)
        return Outgoing(status_topic, state.workflow_id.encode(), None)


def earlier_runs(reader: RangeReader, workflow_id: str) -> list[WorkflowState]:
    """The kept runs of a workflow that continued as new, latest first."""
    start = runs_prefix(workflow_id)
    runs = [
        WorkflowState.from_bytes(value) for _, value in reader.iter_range(start, prefix_end(start))
    ]
    runs.sort(key=lambda run: (run.updated_ms, run.started_ms), reverse=True)
    return runs
