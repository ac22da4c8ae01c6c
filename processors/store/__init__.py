"""The saga processor's local state: per-partition stores backed by a changelog topic.

Two backends pass one contract suite: RocksDB (rocksdict in raw mode, bytes only) for
workers and an in-memory twin for tests. Every key's layout is in :mod:`.keys`. The
checkpoint of a batch (:class:`processors.checkpoint.Checkpoint` runs it):

1. stage the batch's writes in a :class:`StoreTransaction` (reads see them);
2. produce ``txn.changes()`` with a :class:`ChangelogWriter` to changelog partition ``p``
   inside the Kafka transaction that also holds the batch's output and offsets;
3. commit the Kafka transaction;
4. ``txn.commit(writer.take_offsets().get(p))``: one atomic store write of the data and
   the offset of its last changelog record.

On assignment, :class:`ChangelogRestorer` replays the changelog from the stored offset + 1
to its committed end, so a crash anywhere recovers to a state matching the committed log.
A store reopened after a close or a crash keeps its data and offset (a memory store: as
long as its :class:`MemoryStore` lives); only ``destroy`` forgets them.
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
from processors.store.keys import TimerEntry, timer_key, workflow_id_of, workflow_key
from processors.store.memory import MemoryPartitionStore, MemoryStore
from processors.store.options import RocksDBOptions
from processors.store.recovery import ChangelogRestorer, RestoreResult
from processors.store.rocksdb import RocksDBPartitionStore, RocksDBStore
from processors.store.timers import due_timers, next_due_ms
from processors.store.transaction import StoreTransaction

__all__ = [
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
    "due_timers",
    "next_due_ms",
    "timer_key",
    "workflow_id_of",
    "workflow_key",
]
