"""``sagas replay``: rebuild the saga processor's state from its event log, no side effect re-run.

Steps, all while the processor group has no live member:

1. read ``S.events`` whole, committed records only, partition by partition, and the DLQ;
2. fold each workflow's events (:mod:`processors.log_fold`) into the store content;
3. per partition, write the changelog records that make the changelog agree with it
   (one Kafka transaction: only keys whose value differs, tombstones for the rest);
4. write the local store, with the offset of the changelog's last record beside it;
5. commit the processor group's offsets at the end replayed to, so it goes on from there.

No command, status or answer is produced: the decisions are in the log already.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path

from confluent_kafka import KafkaException

from processors.changelog_rewrite import ChangelogRewrite, rewrite_partition
from processors.log_fold import PartitionFold, RebuiltPartition, collection_paused
from processors.log_reading import (
    DeadLetterIndex,
    LogReader,
    PartitionRange,
    Progress,
    check_reachable,
    client_config,
    processed_ends,
    read_dead_letter_index,
)
from processors.partition_workers import (
    FoldJob,
    fold_and_write_in_workers,
    fold_in_workers,
)
from processors.saga_processor import routing_for
from processors.store.base import PartitionStore
from processors.store.errors import StoreError
from processors.store.keys import WORKFLOW_PREFIX, prefix_end, workflow_id_of, workflow_key
from processors.store.memory import MemoryPartitionStore
from processors.store.options import RocksDBOptions
from processors.store.recovery import ChangelogRestorer
from processors.store.rocksdb import RocksDBStore
from processors.visibility_staging import VisibilityStaging
from sagas.config import KafkaSettings
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions, declaring_modules
from sagas.errors import KafkaUnavailableError
from schemas.deployment_codecs import event_codec
from topics.naming import TopicNames
from topics.offset_reset import require_inactive, reset_offsets


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What a replay did on one partition."""

    partition: int
    end_offset: int
    """The offset of ``S.events`` the group goes on from."""
    events: int
    workflows: int
    parked: int
    changelog_records: int
    """Changelog records written to make the changelog agree (0: it did already)."""


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What a replay read and rebuilt."""

    saga: str
    group: str
    partitions: tuple[PartitionReport, ...]
    seconds: float

    @property
    def events(self) -> int:
        return sum(p.events for p in self.partitions)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class StateDifference:
    """One workflow whose rebuilt state is not the live one."""

    workflow_id: str
    partition: int
    fields: tuple[str, ...]
    """The state fields that differ; ``("missing",)`` / ``("extra",)`` when one side lacks it."""


@dataclass(slots=True)
class _Log:
    """A saga's event log opened for a fold: its partitions, where their inputs were
    processed to, and the job workers fold it with (``None``: it folds in this process)."""

    versions: SagaVersions
    reader: LogReader
    ranges: list[PartitionRange]
    processed: list[PartitionRange]
    ends: dict[int, int]
    letters: DeadLetterIndex
    visibility: VisibilityStaging
    now_ms: int
    workers: int
    job: FoldJob | None


def _open_log(
    versions: SagaVersions,
    kafka: KafkaSettings,
    retention: timedelta | None,
    jobs: int | None,
    state_dir: Path | None = None,
) -> _Log:
    routing = routing_for(versions, kafka.topic_prefix)
    group = TopicNames(versions.name, kafka.topic_prefix).processor_group
    reader = LogReader(kafka, routing.events_topic)
    try:
        ranges = reader.ranges()
        ends = processed_ends(kafka, group, routing.events_topic, ranges)
        letters = read_dead_letter_index(kafka, routing.dlq_topic, routing.events_topic)
    except BaseException:
        reader.close()
        raise
    now_ms = time.time_ns() // 1_000_000
    processed = [PartitionRange(p.partition, p.start, ends[p.partition]) for p in ranges]
    workers = default_workers(len(ranges)) if jobs is None else jobs
    modules = declaring_modules(versions) if workers > 1 and len(ranges) > 1 else None
    job = None
    if modules is not None:
        reader.close()  # the workers read with their own
        job = FoldJob(versions.name, modules, tuple(versions.plans), kafka,
                      routing.events_topic, letters, ends, retention, now_ms,
                      state_dir)  # fmt: skip
    visibility = VisibilityStaging(versions, retention)
    return _Log(versions, reader, ranges, processed, dict(ends), letters, visibility, now_ms,
                workers, job)  # fmt: skip


def _fold_here(
    log: _Log, kafka: KafkaSettings, progress: Progress | None
) -> list[RebuiltPartition]:
    """Fold every partition of ``log`` in this process, one after the other."""
    codec = event_codec(kafka, log.reader.topic)
    total = sum(part.end - part.start for part in log.ranges)
    done = 0
    rebuilt = []
    with collection_paused():
        for part in log.ranges:
            fold = PartitionFold(log.versions, codec, part.partition, log.letters,
                                 log.ends[part.partition], visibility=log.visibility,
                                 now_ms=log.now_ms)  # fmt: skip
            add = fold.add
            for chunk in log.reader.read(part):
                for message in chunk:
                    add(message.offset() or 0, message.key(), message.value())
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            rebuilt.append(fold.finish())
    return rebuilt


def fold_log(
    versions: SagaVersions,
    kafka: KafkaSettings,
    progress: Progress | None = None,
    *,
    retention: timedelta | None = None,
    jobs: int | None = None,
) -> tuple[list[PartitionRange], list[RebuiltPartition]]:
    """Read the saga's event log and DLQ whole and fold them, partition by partition,
    with the search index and retention the processor keeps (``retention``: the
    deployment's period, as the workers were given it; else the sagas' own).

    ``jobs``: how many worker processes fold partitions side by side (default:
    :func:`default_workers`; 1 folds in this process, as does a saga the workers cannot
    import: see :mod:`processors.partition_workers`).
    The ranges returned end where the processor group has processed the log (its
    committed offsets): inputs past them are left for it.
    """
    log = _open_log(versions, kafka, retention, jobs)
    try:
        if log.job is None:
            return log.processed, _fold_here(log, kafka, progress)
        # Unpickling the workers' store content allocates as much as a fold does.
        with collection_paused():
            return log.processed, fold_in_workers(log.job, log.ranges, log.workers, progress)
    finally:
        log.reader.close()


def default_workers(partitions: int) -> int:
    """One fold worker per core; one per partition when there are at most twice as many
    partitions as cores, so that three partitions on two cores fold side by side instead
    of one core idling while the other folds the third (the scheduler shares the cores)."""
    cores = os.cpu_count() or 1
    return partitions if cores < partitions <= 2 * cores else cores


def replay(
    versions: SagaVersions,
    kafka: KafkaSettings,
    state_dir: Path,
    *,
    progress: Progress | None = None,
    retention: timedelta | None = None,
    jobs: int | None = None,
) -> ReplayReport:
    """Rebuild the processor's store and changelog from ``S.events``; set its group's offsets
    (``jobs``: the worker processes that fold, as for :func:`fold_log`; they also write
    what they folded, once every partition has folded).

    Raises ``GroupActiveError`` (naming the members) while the processor group has any.
    """
    started = time.perf_counter()
    names = TopicNames(versions.name, kafka.topic_prefix)
    config = client_config(kafka)
    group = names.processor_group
    check_reachable(kafka, names.events)
    _require_inactive(config, group)
    log = _open_log(versions, kafka, retention, jobs, state_dir)
    try:
        if log.job is not None:
            written = fold_and_write_in_workers(
                log.job,
                log.ranges,
                log.workers,
                progress,
                before_writing=lambda: _require_inactive(config, group),
            )
            reports = [
                PartitionReport(
                    part.partition, part.end, w.events, w.workflows, w.parked, w.changelog_records
                )
                for part, w in zip(log.processed, written, strict=True)
            ]
        else:
            reports = _fold_and_write_here(log, kafka, state_dir, progress, config)
    finally:
        log.reader.close()
    reset_offsets(config, group, names.events, {p.partition: p.end for p in log.processed})
    return ReplayReport(versions.name, group, tuple(reports), time.perf_counter() - started)


def _fold_and_write_here(
    log: _Log,
    kafka: KafkaSettings,
    state_dir: Path,
    progress: Progress | None,
    config: dict[str, object],
) -> list[PartitionReport]:
    names = TopicNames(log.versions.name, kafka.topic_prefix)
    # Before the fold: a changelog that cannot be written fails the replay at once.
    rewrite = ChangelogRewrite(kafka, log.versions.name)
    try:
        rebuilt = _fold_here(log, kafka, progress)
        _require_inactive(config, names.processor_group)
        store = RocksDBStore(state_dir, names.processor_group, names.events,
                             RocksDBOptions(open_max_retries=0))  # fmt: skip
        try:
            reports = []
            for part, partition in zip(log.processed, rebuilt, strict=True):
                records = rewrite_partition(rewrite, store, part.partition, partition.changes)
                reports.append(
                    PartitionReport(part.partition, part.end, partition.events,
                                    len(partition.states), len(partition.parked), records)
                )  # fmt: skip
            return reports
        finally:
            store.close()
    finally:
        rewrite.close()


def _require_inactive(config: dict[str, object], group: str) -> None:
    try:
        require_inactive(config, group, timeout_s=10)
    except KafkaException as exc:
        raise KafkaUnavailableError(f"cannot describe group {group}: {exc}") from exc


def live_states(
    versions: SagaVersions, kafka: KafkaSettings, state_dir: Path, partitions: Iterable[int]
) -> dict[int, dict[str, bytes]]:
    """The stored workflow states per partition: from the state directory where it holds the
    partition (and no running processor has it open), else from the changelog."""
    names = TopicNames(versions.name, kafka.topic_prefix)
    store = RocksDBStore(
        state_dir, names.processor_group, names.events, RocksDBOptions(open_max_retries=0)
    )
    restorer: ChangelogRestorer | None = None
    found: dict[int, dict[str, bytes]] = {}
    try:
        for partition in partitions:
            source: PartitionStore | None = None
            if store.partition_path(partition).exists():
                try:
                    source = store.partition(partition)
                except StoreError:
                    source = None  # locked by a running processor: ask the changelog
            if source is None:
                if restorer is None:
                    restorer = ChangelogRestorer(client_config(kafka), names.state_changelog)
                source = MemoryPartitionStore(partition)
                restorer.restore(source)
            found[partition] = {
                workflow_id_of(key): value
                for key, value in source.iter_range(WORKFLOW_PREFIX, prefix_end(WORKFLOW_PREFIX))
            }
    finally:
        store.close()
        if restorer is not None:
            restorer.close()
    return found


def differences(
    rebuilt: list[RebuiltPartition], live: dict[int, dict[str, bytes]]
) -> list[StateDifference]:
    """Every workflow whose rebuilt state differs from the live one, field by field."""
    found = []
    for partition in rebuilt:
        theirs = live.get(partition.partition, {})
        for wid in sorted(partition.states):
            data = theirs.get(wid)
            if data is None:
                found.append(StateDifference(wid, partition.partition, ("missing",)))
            elif data != partition.changes[workflow_key(wid)]:
                state = partition.states[wid]
                found.append(StateDifference(wid, partition.partition, _fields(state, data)))
        for wid in sorted(set(theirs) - set(partition.states)):
            found.append(StateDifference(wid, partition.partition, ("extra",)))
    return found


def _fields(rebuilt: WorkflowState, data: bytes) -> tuple[str, ...]:
    live = WorkflowState.from_bytes(data)
    differ = tuple(
        f.name for f in fields(WorkflowState) if getattr(rebuilt, f.name) != getattr(live, f.name)
    )
    return differ or ("encoding",)
