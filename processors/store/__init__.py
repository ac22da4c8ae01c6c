"""The saga processor's local state: per-partition stores backed by a changelog topic.

Two backends pass one contract suite: RocksDB (rocksdict in raw mode, bytes only) for
workers and an in-memory twin for tests. A :class:`StoreTransaction` stages a batch's
writes; they reach the store in one atomic write with the changelog offset once the
Kafka transaction holding their changelog records has committed.
"""

from processors.store.base import Changes, PartitionStore, RangeReader, Store
from processors.store.changelog import ChangelogWriteError, ChangelogWriter
from processors.store.errors import (
    ChangelogOffsetError,
    ChangelogRestoreError,
    InvalidStoreDataError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
)
from processors.store.memory import MemoryPartitionStore, MemoryStore
from processors.store.options import RocksDBOptions
from processors.store.recovery import ChangelogRestorer, RestoreResult, restore_partition
from processors.store.rocksdb import RocksDBPartitionStore, RocksDBStore
from processors.store.timers import (
    TIMER_PREFIX,
    WORKFLOW_PREFIX,
    TimerEntry,
    add_timer,
    due_timers,
    next_due_ms,
    parse_timer_key,
    remove_timer,
    timer_key,
    workflow_id_of,
    workflow_key,
)
from processors.store.transaction import StoreTransaction

__all__ = [
    "TIMER_PREFIX",
    "WORKFLOW_PREFIX",
    "ChangelogOffsetError",
    "ChangelogRestoreError",
    "ChangelogRestorer",
    "ChangelogWriteError",
    "ChangelogWriter",
    "Changes",
    "InvalidStoreDataError",
    "MemoryPartitionStore",
    "MemoryStore",
    "PartitionStore",
    "RangeReader",
    "RestoreResult",
    "RocksDBOptions",
    "RocksDBPartitionStore",
    "RocksDBStore",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreLockedError",
    "StoreTransaction",
    "TimerEntry",
    "add_timer",
    "due_timers",
    "next_due_ms",
    "parse_timer_key",
    "remove_timer",
    "restore_partition",
    "timer_key",
    "workflow_id_of",
    "workflow_key",
]
