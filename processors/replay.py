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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer

from processors.log_fold import PartitionFold, RebuiltPartition, collection_paused
from processors.log_reading import (
    LogReader,
    PartitionRange,
    Progress,
    check_reachable,
    client_config,
    processed_ends,
    read_dead_letter_index,
)
from processors.partition_workers import FoldJob, declaring_modules, fold_in_workers
from processors.saga_processor import routing_for
from processors.store.base import PartitionStore
from processors.store.changelog import ChangelogWriter
from processors.store.errors import StoreError
from processors.store.keys import WORKFLOW_PREFIX, prefix_end, workflow_id_of, workflow_key
from processors.store.memory import MemoryPartitionStore
from processors.store.options import RocksDBOptions
from processors.store.recovery import ChangelogRestorer
from processors.store.rocksdb import RocksDBStore
from processors.visibility_staging import VisibilityStaging
from sagas.config import KafkaSettings
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import KafkaUnavailableError
from schemas.deployment_codecs import event_codec
from topics.client_configs import transactional_producer_config
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


def fold_log(
    versions: SagaVersions,
    kafka: KafkaSettings,
    progress: Progress | None = None,
    *,
    retention: timedelta | None = None,
    jobs: int | None = None,
    meanwhile: Callable[[list[PartitionRange]], None] | None = None,
) -> tuple[list[PartitionRange], list[RebuiltPartition]]:
    """Read the saga's event log and DLQ whole and fold them, partition by partition,
    with the search index and retention the processor keeps (``retention``: the
    deployment's period, as the workers were given it; else the sagas' own).

    ``jobs``: how many worker processes fold partitions side by side (default:
    :func:`default_workers`; 1 folds in this process, as does a saga the workers cannot
    import: see :mod:`processors.partition_workers`). ``meanwhile`` is given the
    partitions' ranges and runs in this process while the workers fold (before the
    fold, without workers).
    The ranges returned end where the processor group has processed the log (its
    committed offsets): inputs past them are left for it.
    """
    routing = routing_for(versions, kafka.topic_prefix)
    group = TopicNames(versions.name, kafka.topic_prefix).processor_group
    reader = LogReader(kafka, routing.events_topic)
    try:
        ranges = reader.ranges()
        ends = processed_ends(kafka, group, routing.events_topic, ranges)
        letters = read_dead_letter_index(kafka, routing.dlq_topic, routing.events_topic)
        visibility = VisibilityStaging(versions, retention)
        now_ms = time.time_ns() // 1_000_000
        processed = [PartitionRange(p.partition, p.start, ends[p.partition]) for p in ranges]
        workers = default_workers(len(ranges)) if jobs is None else jobs
        modules = declaring_modules(versions) if workers > 1 and len(ranges) > 1 else None
        if modules is not None:
            reader.close()
            job = FoldJob(versions.name, modules, tuple(versions.plans), kafka,
                          routing.events_topic, letters, ends, retention, now_ms)  # fmt: skip

            # Unpickling the workers' store content allocates as much as a fold does.
            def alongside() -> None:
                if meanwhile is not None:
                    meanwhile(processed)

            with collection_paused():
                return processed, fold_in_workers(job, ranges, workers, progress, alongside)
        if meanwhile is not None:
            meanwhile(processed)
        codec = event_codec(kafka, routing.events_topic)
        total = sum(part.end - part.start for part in ranges)
        done = 0
        rebuilt = []
        with collection_paused():
            for part in ranges:
                fold = PartitionFold(versions, codec, part.partition, letters, ends[part.partition],
                                     visibility=visibility, now_ms=now_ms)  # fmt: skip
                add = fold.add
                for chunk in reader.read(part):
                    for message in chunk:
                        add(message.offset() or 0, message.key(), message.value())
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                rebuilt.append(fold.finish())
        return processed, rebuilt
    finally:
        reader.close()


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
    (``jobs``: the worker processes that fold, as for :func:`fold_log`).

    Raises ``GroupActiveError`` (naming the members) while the processor group has any.
    """
    started = time.perf_counter()
    names = TopicNames(versions.name, kafka.topic_prefix)
    config = client_config(kafka)
    group = names.processor_group
    check_reachable(kafka, names.events)
    _require_inactive(config, group)
    opened: list[ChangelogRewrite] = []

    def read_changelog(ranges: list[PartitionRange]) -> None:
        # While the log folds: the transactional init and the changelog's present content
        # take a second of waiting on the broker that the fold need not wait for.
        opened.append(ChangelogRewrite(kafka, versions.name))
        opened[0].read_current([part.partition for part in ranges])

    try:
        ranges, rebuilt = fold_log(
            versions, kafka, progress, retention=retention, jobs=jobs, meanwhile=read_changelog
        )
    except BaseException:
        for rewrite in opened:
            rewrite.close()
        raise
    rewrite = opened[0]
    try:
        _require_inactive(config, group)
        store = RocksDBStore(state_dir, group, names.events, RocksDBOptions(open_max_retries=0))
    except BaseException:
        rewrite.close()
        raise
    reports = []
    try:
        for part, partition in zip(ranges, rebuilt, strict=True):
            written, offset = rewrite.agree(part.partition, partition.changes)
            local = store.partition(part.partition)
            local.clear()
            local.write(partition.changes, offset)
            store.close_partition(part.partition)
            reports.append(
                PartitionReport(
                    part.partition, part.end, partition.events, len(partition.states),
                    len(partition.parked), written,
                )
            )  # fmt: skip
    finally:
        store.close()
        rewrite.close()
    reset_offsets(config, group, names.events, {p.partition: p.end for p in ranges})
    return ReplayReport(versions.name, group, tuple(reports), time.perf_counter() - started)


def _require_inactive(config: dict[str, object], group: str) -> None:
    try:
        require_inactive(config, group, timeout_s=10)
    except KafkaException as exc:
        raise KafkaUnavailableError(f"cannot describe group {group}: {exc}") from exc


class ChangelogRewrite:
    """Makes changelog partitions hold given contents, with as few records as it takes."""

    def __init__(self, kafka: KafkaSettings, saga: str) -> None:
        names = TopicNames(saga, kafka.topic_prefix)
        config = client_config(kafka)
        self._topic = names.state_changelog
        self._restorer = ChangelogRestorer(config, names.state_changelog)
        self._producer = Producer(
            transactional_producer_config(
                kafka, f"{names.processor_group}.replay", timedelta(seconds=60)
            )
            | {"logger": config["logger"]}
        )
        try:
            init_transactions(self._producer)
        except KafkaException as exc:
            self._restorer.close()
            raise KafkaUnavailableError(f"cannot write {self._topic}: {_kafka_text(exc)}") from exc
        self._writer = ChangelogWriter(self._producer, names.state_changelog)
        self._current: dict[int, MemoryPartitionStore] = {}

    def agree(self, partition: int, content: Mapping[bytes, bytes]) -> tuple[int, int | None]:
        """Write what makes changelog ``partition`` hold ``content`` (one transaction: the
        keys whose value differs, tombstones for the keys not in it); returns how many
        records that took and the offset of the partition's last record."""
        current = self._current.pop(partition, None)
        if current is None:
            current = self._read(partition)
        changes: dict[bytes, bytes | None] = {
            key: None for key, _ in current.iter_range(b"") if key not in content
        }
        for key, value in content.items():
            if current.get(key) != value:
                changes[key] = value
        if not changes:
            return 0, current.changelog_offset()
        try:
            self._producer.begin_transaction()
            self._writer.produce(partition, changes)
            self._producer.commit_transaction(60)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"writing {self._topic} failed: {exc}") from exc
        offsets = self._writer.take_offsets()
        return len(changes), offsets.get(partition, current.changelog_offset())

    def read_current(self, partitions: Iterable[int]) -> None:
        """Read what changelog ``partitions`` hold now, for :meth:`agree` to compare with."""
        for partition in partitions:
            self._current[partition] = self._read(partition)

    def _read(self, partition: int) -> MemoryPartitionStore:
        current = MemoryPartitionStore(partition)
        self._restorer.restore(current)
        return current

    def close(self) -> None:
        """Release the producer and the restore consumers."""
        self._restorer.close()
        self._producer.flush(10)


INIT_TRANSACTIONS_S = 60.0
"""How long a replay waits for the transaction coordinator (it loads on a fresh broker)."""

_COORDINATOR_LOADING = frozenset({
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR, KafkaError._TIMED_OUT,
})  # fmt: skip


def init_transactions(producer: Producer, timeout_s: float = INIT_TRANSACTIONS_S) -> None:
    """Initialize ``producer``'s transactions, trying again while the coordinator loads:
    on a broker just started, its transaction log is still being loaded, and the first
    attempts are answered "Coordinator load in progress" or time out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            producer.init_transactions(min(10.0, max(1.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            loading = isinstance(error, KafkaError) and (
                error.code() in _COORDINATOR_LOADING or error.retriable()
            )
            if not loading or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _kafka_text(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else exc
    return error.str() if isinstance(error, KafkaError) else str(error)


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
