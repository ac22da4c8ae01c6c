"""Typed settings of the saga processor and the step worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

DEFAULT_STATE_DIR = Path(".sagas-state")
"""Where a process keeps its state and instance id when told nothing else."""


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """How the saga processor batches, commits and keeps state."""

    state_dir: Path = DEFAULT_STATE_DIR
    """Where the RocksDB stores and the instance id of this process live."""
    store: Literal["rocksdb", "memory"] = "rocksdb"
    """The state backend; ``memory`` keeps state in RAM and restores from the changelog."""
    max_batch_records: int = 5000
    """Most records consumed into one Kafka transaction."""
    poll_timeout: timedelta = timedelta(milliseconds=20)
    """How long one poll waits for records when nothing is pending.

    Transactions commit when a polled batch is processed, not on a long timer: a command
    stays invisible to read_committed step workers until its transaction commits.
    """
    max_timers_per_batch: int = 2000
    """Most due timers fired into one transaction, so a backlog cannot starve records."""
    transaction_timeout: timedelta = timedelta(seconds=15)
    """After this, the broker aborts a transaction of a crashed process."""
    state_cache_size: int = 100_000
    """Workflow states kept parsed in memory per partition (the store holds all of them)."""
    instance_id: str | None = None
    """Stable identity across restarts: the static group member and the transactional id's
    suffix. When not given, the one kept in state_dir (made there on the first start from
    the host, the state directory and the role), so a restarted process takes its
    partitions back and fences its previous incarnation at once."""

    retention: timedelta | None = None
    """How long ended workflows are kept (overrides the sagas' own ``retention``)."""
    serve_queries: bool = True
    """Whether to answer describe, list and query requests over HTTP (see QuerySettings)."""

    def __post_init__(self) -> None:
        if self.retention is not None and self.retention <= timedelta(0):
            raise ValueError(f"retention must be positive, got {self.retention}")
        if self.max_batch_records < 1:
            raise ValueError(f"max_batch_records must be >= 1, got {self.max_batch_records}")
        if self.max_timers_per_batch < 1:
            raise ValueError(f"max_timers_per_batch must be >= 1, got {self.max_timers_per_batch}")
        if self.poll_timeout <= timedelta(0):
            raise ValueError(f"poll_timeout must be positive, got {self.poll_timeout}")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a step worker runs actions and commits their answers."""

    max_concurrency: int = 256
    """Most actions running at once; commands of one workflow still run one at a time."""
    max_buffered_commands: int = 10_000
    """Partitions are paused while more commands than this wait or run."""
    commit_interval: timedelta = timedelta(milliseconds=20)
    """Offsets of answered commands are committed at most this often. Answers do not wait
    for it (each is sent when its action returns); a crash re-runs at most the commands
    answered since the last commit."""
    instance_id: str | None = None
    """Stable identity across restarts (the static group member), as the processor's;
    when not given, the one kept in state_dir (made from the host, the state directory
    and the queues)."""
    state_dir: Path | None = None
    """Where the instance id and the lock of this worker live (None: the processor's state
    directory when run beside one, else ``.sagas-state``)."""
    dispatch_objective_ms: int | None = None
    """A deployment's dispatch objective for every step it serves, over the saga's own."""
    processes: int | None = None
    """Size of the pool that runs ``executor="process"`` actions (None: one per core);
    its processes are spawned when first needed."""

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_buffered_commands < self.max_concurrency:
            raise ValueError("max_buffered_commands must be >= max_concurrency")
