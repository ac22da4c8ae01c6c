"""Folding the partitions of a saga's event log in worker processes, whole partitions each.

Partitions fold independently (a workflow's events all sit in one partition), so each
worker process reads and folds whole partitions with its own consumer and hands back
the store content as bytes: the fold runs on every core and the fetches of one
partition overlap the fold of another. The parent writes nothing until every partition
has come back, so a failed worker leaves the store and the changelog as they were.

The workers are forked from a fork server, not from the parent: a process running
Kafka clients has threads, and a child forked from it inherits whatever lock one of
them held at that instant (glibc's address-lookup lock, for one) locked for ever, so
its own consumer could hang resolving the broker. A worker imports the saga's
definition from the module that declared it, so only a saga declared at a module's top
level (what ``sagas replay MODULE:SAGA`` loads) folds in workers.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.sharedctypes import Synchronized

from processors.log_fold import PartitionFold, RebuiltPartition
from processors.log_reading import DeadLetterIndex, LogReader, PartitionRange, Progress
from processors.store.keys import workflow_key
from processors.visibility_staging import VisibilityStaging
from sagas.config import KafkaSettings
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions, compile_versions, module_versions
from sagas.errors import DefinitionError, SagaError
from schemas.deployment_codecs import event_codec

PROGRESS_INTERVAL_S = 0.2
"""How often the parent reports the records the workers have read."""


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


def declaring_modules(versions: SagaVersions) -> tuple[str, ...] | None:
    """The modules whose top level declares every version of ``versions`` (so that a
    process importing them gets the very same definitions), or ``None`` if any is not
    (a saga declared inside a function, or in a script run as ``__main__``)."""
    modules = set()
    for definition in versions.definitions.values():
        module = sys.modules.get(definition.module or "")
        if module is None or module.__name__ == "__main__":
            return None
        try:
            declared = module_versions(module, versions.name)
        except DefinitionError:
            return None
        if not any(saga is definition for saga in declared):
            return None
        modules.add(module.__name__)
    return tuple(sorted(modules))


def load_versions(job: FoldJob) -> SagaVersions:
    """The saga's versions as ``job`` names them, imported from their modules.

    Raises ``DefinitionError`` when the modules no longer declare exactly those versions.
    """
    found = {}
    for name in job.modules:
        for saga in module_versions(importlib.import_module(name), job.saga):
            found[saga.version] = saga
    missing = sorted(set(job.versions) - set(found))
    if missing:
        raise DefinitionError(
            f"modules {', '.join(job.modules)} do not declare version(s) {missing} of"
            f" saga {job.saga!r}",
            saga=job.saga,
        )
    return compile_versions([found[version] for version in job.versions])


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
_loaded: tuple[SagaVersions, VisibilityStaging] | None = None


def _start_worker(job: FoldJob, read: Synchronized[int]) -> None:
    # A worker process folds for one job only: its partitions' tasks read it from here.
    global _job, _read, _loaded
    _job, _read, _loaded = job, read, None
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
        rebuilt = fold.finish()
    finally:
        reader.close()
    return _Folded(rebuilt.partition, list(rebuilt.states), rebuilt.changes, rebuilt.events,
                   list(rebuilt.parked), time.process_time() - cpu)  # fmt: skip


def fold_in_workers(
    job: FoldJob,
    ranges: list[PartitionRange],
    jobs: int,
    progress: Progress | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[RebuiltPartition]:
    """Fold every partition of ``ranges`` in up to ``jobs`` worker processes; the rebuilt
    partitions in the order of ``ranges``. ``meanwhile`` runs here while they fold.

    Raises :class:`FoldWorkerError` when a worker fails or dies.
    """
    total = sum(part.end - part.start for part in ranges)
    context = multiprocessing.get_context("forkserver")
    # The server imports the fold once; each worker forked from it starts with it loaded.
    context.set_forkserver_preload([__name__])
    read: Synchronized[int] = context.Value("q", 0)
    folded: dict[int, _Folded] = {}
    # The largest partitions first, so the last one to start is a short one.
    order = sorted(ranges, key=lambda p: p.end - p.start, reverse=True)
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(ranges))), mp_context=context,
        initializer=_start_worker, initargs=(job, read),
    )  # fmt: skip
    try:
        pending: set[Future[_Folded | _Failed]] = {
            pool.submit(_fold_partition, part) for part in order
        }
        if meanwhile is not None:
            meanwhile()
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
        raise FoldWorkerError(
            f"a replay worker process died while folding {job.topic} ({exc}); nothing was"
            " written: rerun the replay (with --jobs 1 to fold in this process)",
            saga=job.saga,
        ) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [_rebuilt(folded[part.partition]) for part in ranges]


def _failure(job: FoldJob, failed: _Failed) -> FoldWorkerError:
    return FoldWorkerError(
        f"folding partition {failed.partition} of {job.topic} failed: {failed.message}"
        f" [{failed.kind}]; nothing was written: rerun the replay once that is fixed",
        saga=job.saga,
    )


def _rebuilt(folded: _Folded) -> RebuiltPartition:
    return RebuiltPartition(
        folded.partition, EncodedStates(folded.workflows, folded.changes), folded.changes,
        folded.events, set(folded.parked), folded.cpu_s,
    )  # fmt: skip
