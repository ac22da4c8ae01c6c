"""Folding the partitions of a saga's event log in worker processes, whole partitions each.

Partitions fold independently (a workflow's events all sit in one partition), so each
worker process reads and folds whole partitions with its own consumer and hands back
the store content as bytes: the fold runs on every core and the fetches of one
partition overlap the fold of another. For ``sagas replay`` (:func:`fold_and_write_in_workers`)
each worker also writes its partitions' changelog and local store, so that these writes
run on every core too, but only once the parent has seen every partition folded and
says go: a failed fold leaves the store and the changelog as they were.

The workers are forked from a fork server, not from the parent: a process running
Kafka clients has threads, and a child forked from it inherits whatever lock one of
them held at that instant (glibc's address-lookup lock, for one) locked for ever, so
its own consumer could hang resolving the broker. A worker imports the saga's
definition from the module that declared it, so only a saga declared at a module's top
level (what ``sagas replay MODULE:SAGA`` loads) folds in workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from processors.changelog_rewrite import ChangelogRewrite, rewrite_partition
from processors.log_fold import PartitionFold, RebuiltPartition
from processors.log_reading import DeadLetterIndex, LogReader, PartitionRange, Progress
from processors.store.keys import workflow_key
from processors.store.options import RocksDBOptions
from processors.store.rocksdb import RocksDBStore
from processors.visibility_staging import VisibilityStaging
from sagas.config import KafkaSettings
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions, import_versions
from sagas.errors import SagaError
from schemas.deployment_codecs import event_codec
from topics.naming import TopicNames

PROGRESS_INTERVAL_S = 0.2
"""How often the parent reports the records the workers have read."""

DECISION_POLL_S = 0.05
"""How often a worker that has folded looks whether the parent said go (or stop)."""

_UNDECIDED, _GO, _STOP = 0, 1, 2


class FoldWorkerError(SagaError):
    """A worker process folding a partition of the log failed; nothing was written."""


@dataclass(frozen=True, slots=True)
class FoldJob:
    """What every worker needs to fold any partition of one log (it crosses to them pickled)."""

    saga: str
    modules: tuple[str, ...]
    """The modules that declare the saga's versions, to import them from."""
    versions: tuple[int, ...]
    kafka: KafkaSettings
    topic: str
    letters: DeadLetterIndex
    ends: Mapping[int, int]
    """Per partition, the offset from which inputs were not processed yet."""
    retention: timedelta | None
    now_ms: int
    state_dir: Path | None = None
    """Where the workers of :func:`fold_and_write_in_workers` write the local stores."""


@dataclass(frozen=True, slots=True)
class WrittenPartition:
    """A partition a worker folded, then wrote to the changelog and the local store."""

    partition: int
    events: int
    workflows: int
    parked: int
    changelog_records: int
    cpu_s: float


def load_versions(job: FoldJob) -> SagaVersions:
    """The saga's versions as ``job`` names them, imported from their modules."""
    return import_versions(job.saga, job.modules, job.versions)


@dataclass(frozen=True, slots=True)
class _Folded:
    """One partition's fold as it crosses back from a worker: the store content as bytes."""

    partition: int
    workflows: list[str]
    changes: dict[bytes, bytes]
    events: int
    parked: list[str]
    cpu_s: float


@dataclass(frozen=True, slots=True)
class _Failed:
    """Why a worker could not fold its partition, as text (exceptions may not pickle)."""

    partition: int
    kind: str
    message: str
    written: tuple[int, ...] | None = None
    """Set when writing failed: the partitions this worker had written before."""


class _StoppedError(Exception):
    """The parent said stop (another partition's fold failed) while this one folded."""


class EncodedStates(Mapping[str, WorkflowState]):
    """The rebuilt workflow states of a partition, decoded from the store content on access."""

    def __init__(self, workflows: list[str], changes: Mapping[bytes, bytes]) -> None:
        self._workflows = dict.fromkeys(workflows)
        self._changes = changes

    def __getitem__(self, wid: str) -> WorkflowState:
        if wid not in self._workflows:
            raise KeyError(wid)
        return WorkflowState.from_bytes(self._changes[workflow_key(wid)])

    def __iter__(self) -> Iterator[str]:
        return iter(self._workflows)

    def __len__(self) -> int:
        return len(self._workflows)


_job: FoldJob | None = None
_read: Synchronized[int] | None = None
_folded: Synchronized[int] | None = None
_decision: Synchronized[int] | None = None
_server_pid = 0
_loaded: tuple[SagaVersions, VisibilityStaging] | None = None


def _start_worker(
    job: FoldJob,
    read: Synchronized[int],
    folded: Synchronized[int] | None = None,
    decision: Synchronized[int] | None = None,
) -> None:
    # A worker process folds for one job only: its partitions' tasks read it from here.
    global _job, _read, _folded, _decision, _server_pid, _loaded
    _job, _read, _folded, _decision, _loaded = job, read, folded, decision, None
    # The fork server, which exits with the replaying process: a worker waiting for the
    # go that is reparented knows the replay is gone.
    _server_pid = os.getppid()
    # As collection_paused does for a fold in the parent, for the worker's whole life:
    # re-enabled after a partition, the collector's next pass walked the heap of the
    # next one (6% of a worker's time).
    gc.disable()


def _fold_partition(part: PartitionRange) -> _Folded | _Failed:
    """Read and fold ``part`` in a worker; every failure comes back as a :class:`_Failed`."""
    assert _job is not None
    assert _read is not None
    try:
        return _fold(_job, _read, part)
    except SagaError as exc:
        return _Failed(part.partition, type(exc).__name__, str(exc))
    except Exception as exc:
        # Any other failure too: the parent reports it as one line, not a worker's traceback.
        return _Failed(part.partition, type(exc).__name__, str(exc) or repr(exc))


def _fold(job: FoldJob, read: Synchronized[int], part: PartitionRange) -> _Folded:
    rebuilt, cpu_s = _fold_rebuilt(job, read, part)
    return _Folded(rebuilt.partition, list(rebuilt.states), rebuilt.changes, rebuilt.events,
                   list(rebuilt.parked), cpu_s)  # fmt: skip


def _fold_rebuilt(
    job: FoldJob, read: Synchronized[int], part: PartitionRange
) -> tuple[RebuiltPartition, float]:
    global _loaded
    if _loaded is None:
        # Imported with the first partition, not when the worker starts: a failing import
        # comes back as this partition's failure, one line, instead of a broken pool.
        versions = load_versions(job)
        _loaded = versions, VisibilityStaging(versions, job.retention)
    versions, visibility = _loaded
    cpu = time.process_time()
    reader = LogReader(job.kafka, job.topic)
    try:
        codec = event_codec(job.kafka, job.topic)
        fold = PartitionFold(versions, codec, part.partition, job.letters,
                             job.ends[part.partition], visibility=visibility,
                             now_ms=job.now_ms)  # fmt: skip
        add = fold.add
        for chunk in reader.read(part):
            for message in chunk:
                add(message.offset() or 0, message.key(), message.value())
            with read.get_lock():
                read.value += len(chunk)
            if _decision is not None and _decision.value == _STOP:
                raise _StoppedError
        rebuilt = fold.finish()
    finally:
        reader.close()
    return rebuilt, time.process_time() - cpu


def _fold_and_write(parts: list[PartitionRange]) -> list[WrittenPartition] | _Failed:
    """Fold ``parts`` in a worker; once the parent says go, write each to the changelog
    and the local store. Told to stop, or orphaned, it writes nothing and returns none."""
    assert _job is not None
    assert _read is not None
    assert _folded is not None
    job = _job
    folded: list[tuple[RebuiltPartition, float]] = []
    for part in parts:
        try:
            folded.append(_fold_rebuilt(job, _read, part))
        except _StoppedError:
            return []
        except Exception as exc:
            return _Failed(part.partition, type(exc).__name__, str(exc) or repr(exc))
        with _folded.get_lock():
            _folded.value += 1
    if not _told_to_go():
        return []
    assert job.state_dir is not None
    names = TopicNames(job.saga, job.kafka.topic_prefix)
    store = RocksDBStore(job.state_dir, names.processor_group, job.topic,
                         RocksDBOptions(open_max_retries=0))  # fmt: skip
    written: list[WrittenPartition] = []
    try:
        for rebuilt, cpu_s in folded:
            began = time.process_time()
            try:
                # Its own transactional id per partition: a rerun fences what a killed
                # replay left open on that partition at once.
                rewrite = ChangelogRewrite(job.kafka, job.saga, f"replay.{rebuilt.partition}")
                try:
                    records = rewrite_partition(rewrite, store, rebuilt.partition, rebuilt.changes)
                finally:
                    rewrite.close()
            except Exception as exc:
                return _Failed(rebuilt.partition, type(exc).__name__, str(exc) or repr(exc),
                               tuple(w.partition for w in written))  # fmt: skip
            written.append(
                WrittenPartition(
                    rebuilt.partition, rebuilt.events, len(rebuilt.states), len(rebuilt.parked),
                    records, cpu_s + time.process_time() - began,
                )
            )  # fmt: skip
    finally:
        store.close()
    return written


def _told_to_go() -> bool:
    """Wait for the parent's word: go (``True``), or stop, or the replay is gone."""
    assert _decision is not None
    while True:
        decided = _decision.value
        if decided != _UNDECIDED:
            return decided == _GO
        if os.getppid() != _server_pid:
            return False
        time.sleep(DECISION_POLL_S)


def _pool(
    context: multiprocessing.context.ForkServerContext,
    workers: int,
    job: FoldJob,
    read: Synchronized[int],
    folded: Synchronized[int] | None = None,
    decision: Synchronized[int] | None = None,
) -> ProcessPoolExecutor:
    # The server imports the fold once; each worker forked from it starts with it loaded.
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker,
        initargs=(job, read, folded, decision),
    )  # fmt: skip


def fold_in_workers(
    job: FoldJob, ranges: list[PartitionRange], jobs: int, progress: Progress | None = None
) -> list[RebuiltPartition]:
    """Fold every partition of ``ranges`` in up to ``jobs`` worker processes; the rebuilt
    partitions in the order of ``ranges``.

    Raises :class:`FoldWorkerError` when a worker fails or dies.
    """
    total = sum(part.end - part.start for part in ranges)
    context = multiprocessing.get_context("forkserver")
    read: Synchronized[int] = context.Value("q", 0)
    folded: dict[int, _Folded] = {}
    # The largest partitions first, so the last one to start is a short one.
    order = sorted(ranges, key=lambda p: p.end - p.start, reverse=True)
    pool = _pool(context, max(1, min(jobs, len(ranges))), job, read)
    try:
        pending: set[Future[_Folded | _Failed]] = {
            pool.submit(_fold_partition, part) for part in order
        }
        while pending:
            done, pending = wait(pending, timeout=PROGRESS_INTERVAL_S, return_when=FIRST_COMPLETED)
            if progress is not None:
                progress(read.value, total)
            for future in done:
                result = future.result()
                if isinstance(result, _Failed):
                    raise _failure(job, result)
                folded[result.partition] = result
    except BrokenProcessPool as exc:
        raise _died(job, exc, written=False) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [_rebuilt(folded[part.partition]) for part in ranges]


def fold_and_write_in_workers(
    job: FoldJob,
    ranges: list[PartitionRange],
    jobs: int,
    progress: Progress | None = None,
    before_writing: Callable[[], None] | None = None,
) -> list[WrittenPartition]:
    """Fold every partition of ``ranges`` in up to ``jobs`` worker processes, then have
    each write its partitions' changelog and local store (``job.state_dir``); what each
    partition took, in the order of ``ranges``.

    Nothing is written before every partition has folded and ``before_writing`` (the
    parent's last check) has returned. Raises :class:`FoldWorkerError` when a worker
    fails or dies; a fold that fails stops the other workers' folds.
    """
    total = sum(part.end - part.start for part in ranges)
    context = multiprocessing.get_context("forkserver")
    read: Synchronized[int] = context.Value("q", 0)
    folded: Synchronized[int] = context.Value("i", 0)
    decision: Synchronized[int] = context.Value("i", _UNDECIDED)
    # A worker holds what it folded until every partition has, so each takes its share
    # at once: the largest partitions first, each to the worker with the fewest records.
    shares = partition_shares(ranges, max(1, min(jobs, len(ranges))))
    pool = _pool(context, len(shares), job, read, folded, decision)
    written: dict[int, WrittenPartition] = {}
    failures: list[_Failed] = []
    try:
        pending: set[Future[list[WrittenPartition] | _Failed]] = {
            pool.submit(_fold_and_write, share) for share in shares
        }
        while pending:
            done, pending = wait(pending, timeout=PROGRESS_INTERVAL_S, return_when=FIRST_COMPLETED)
            if progress is not None:
                progress(read.value, total)
            for future in done:
                result = future.result()
                if isinstance(result, _Failed):
                    failures.append(result)
                    if decision.value == _UNDECIDED:
                        decision.value = _STOP
                else:
                    written.update((w.partition, w) for w in result)
            if decision.value == _UNDECIDED and folded.value == len(ranges):
                if before_writing is not None:
                    before_writing()
                decision.value = _GO
    except BrokenProcessPool as exc:
        raise _died(job, exc, written=decision.value == _GO) from exc
    finally:
        if decision.value == _UNDECIDED:
            decision.value = _STOP  # interrupted here: the workers write nothing
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise _failure(job, failures[0], sorted(written))
    return [written[part.partition] for part in ranges]


def partition_shares(ranges: list[PartitionRange], workers: int) -> list[list[PartitionRange]]:
    """``ranges`` dealt to ``workers``: the largest first, each to the share with the
    fewest records so far (no empty share)."""
    shares: list[list[PartitionRange]] = [[] for _ in range(workers)]
    sizes = [0] * workers
    for part in sorted(ranges, key=lambda p: p.end - p.start, reverse=True):
        least = sizes.index(min(sizes))
        shares[least].append(part)
        sizes[least] += part.end - part.start
    return [share for share in shares if share]


def _died(job: FoldJob, exc: BrokenProcessPool, *, written: bool) -> FoldWorkerError:
    what = (
        "while writing: some partitions may be rewritten and others not, rerun the replay"
        if written
        else "while folding; nothing was written: rerun the replay"
    )
    return FoldWorkerError(
        f"a replay worker process died {what} (with --jobs 1 to fold in this process) [{exc}]",
        saga=job.saga,
    )


def _failure(
    job: FoldJob, failed: _Failed, written_elsewhere: list[int] | None = None
) -> FoldWorkerError:
    if failed.written is None:
        return FoldWorkerError(
            f"folding partition {failed.partition} of {job.topic} failed: {failed.message}"
            f" [{failed.kind}]; nothing was written: rerun the replay once that is fixed",
            saga=job.saga,
        )
    done = sorted({*failed.written, *(written_elsewhere or [])})
    return FoldWorkerError(
        f"writing partition {failed.partition} of {job.topic} failed: {failed.message}"
        f" [{failed.kind}]; partitions rewritten: {done or 'none'}, the others are as they"
        " were: rerun the replay",
        saga=job.saga,
    )


def _rebuilt(folded: _Folded) -> RebuiltPartition:
    return RebuiltPartition(
        folded.partition, EncodedStates(folded.workflows, folded.changes), folded.changes,
        folded.events, set(folded.parked), folded.cpu_s,
    )  # fmt: skip
