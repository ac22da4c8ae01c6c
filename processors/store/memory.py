"""The in-memory twin of the RocksDB store, for tests and the in-memory test environment."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from processors.store.base import (
    Changes,
    PartitionStore,
    RangeReader,
    Store,
    check_key,
    check_limit,
)

# Above this many new keys in one write, re-sorting the key list once beats inserting each.
_RESORT_THRESHOLD = 64


@dataclass
class _PartitionData:
    """What a memory partition keeps between close and reopen, like the files of RocksDB."""

    values: dict[bytes, bytes] = field(default_factory=dict)
    sorted_keys: list[bytes] = field(default_factory=list)
    offset: int | None = None


class _SnapshotReader:
    """Reads for another thread than the writer's: a key deleted meanwhile is skipped."""

    def __init__(self, data: _PartitionData) -> None:
        self._data = data

    def get(self, key: bytes) -> bytes | None:
        return self._data.values.get(key)

    def iter_range(
        self, start: bytes, stop: bytes | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        keys = list(self._data.sorted_keys)
        low = bisect_left(keys, start)
        high = len(keys) if stop is None else max(low, bisect_left(keys, stop))
        values = self._data.values
        found = [(k, v) for k in keys[low:high] if (v := values.get(k)) is not None]
        return iter(found if limit is None else found[:limit])


class MemoryPartitionStore(PartitionStore):
    """A partition store held in a dict, with a sorted key list for ordered range reads."""

    def __init__(self, partition: int = 0, data: _PartitionData | None = None) -> None:
        super().__init__(partition)
        self._data = data if data is not None else _PartitionData()

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        check_key(key)
        return self._data.values.get(key)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        self._check_open()
        for key in keys:
            check_key(key)
        values = self._data.values
        return [values.get(key) for key in keys]

    def iter_range(
        self, start: bytes, stop: bytes | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        check_key(start)
        if stop is not None:
            check_key(stop)
        check_limit(limit)
        keys = self._data.sorted_keys
        low = bisect_left(keys, start)
        high = len(keys) if stop is None else max(low, bisect_left(keys, stop))
        if limit is not None:
            high = min(high, low + limit)
        values = self._data.values
        # Copied now so that the iteration sees the store as it was, as a RocksDB iterator does.
        return iter([(key, values[key]) for key in keys[low:high]])

    def concurrent_reader(self) -> RangeReader:
        return _SnapshotReader(self._data)

    def changelog_offset(self) -> int | None:
        self._check_open()
        return self._data.offset

    def clear(self) -> None:
        self._check_open()
        self._data.values.clear()
        self._data.sorted_keys.clear()
        self._data.offset = None

    def close(self) -> None:
        self._closed = True

    def destroy(self) -> None:
        self._data.values.clear()
        self._data.sorted_keys.clear()
        self._data.offset = None
        self._closed = True

    def _write(self, changes: Changes, changelog_offset: int | None) -> None:
        values = self._data.values
        keys = self._data.sorted_keys
        added: list[bytes] = []
        for key, value in changes.items():
            if value is None:
                if values.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if key not in values:
                    added.append(key)
                values[key] = value
        if len(added) > _RESORT_THRESHOLD:
            keys.extend(added)
            keys.sort()
        else:
            for key in added:
                insort(keys, key)
        if changelog_offset is not None:
            self._data.offset = changelog_offset


class MemoryStore(Store):
    """Partition stores in memory; a closed partition keeps its data until it is destroyed."""

    def __init__(self) -> None:
        super().__init__()
        self._saved: dict[int, _PartitionData] = {}

    def _open_partition(self, partition: int) -> PartitionStore:
        data = self._saved.setdefault(partition, _PartitionData())
        return MemoryPartitionStore(partition, data)

    def _destroy_closed(self, partition: int) -> None:
        self._saved.pop(partition, None)

    def destroy_partition(self, partition: int) -> None:
        super().destroy_partition(partition)
        self._saved.pop(partition, None)
