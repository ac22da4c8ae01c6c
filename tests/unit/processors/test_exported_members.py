from __future__ import annotations

import processors
import processors.store
from tests.public_surface import public_names


def test_the_runtime_package_exports_nothing_itself() -> None:
    assert processors.__all__ == []
    assert public_names(processors) == set()


def test_store_surface_is_exactly_the_chosen_names() -> None:
    assert set(processors.store.__all__) == {
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
    }
    assert public_names(processors.store) == set(processors.store.__all__)
