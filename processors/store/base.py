"""The interface every state store backend implements, and the checks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from processors.store.errors import (
    ChangelogOffsetError,
    InvalidStoreDataError,
    StoreClosedError,
)

Changes = Mapping[bytes, bytes | None]
"""Writes to apply at once: a key mapped to its new value, or to ``None`` to delete it."""


class RangeReader(Protocol):
    """What reads need: satisfied by a partition store and by a transaction over one."""

    def get(self, key: bytes) -> bytes | None: ...

    def iter_range(
        self, start: bytes, stop: bytes | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]: ...


class PartitionStore(ABC):
    """The local state of one partition: bytes keys to bytes values, plus a changelog offset.

    A write applies its changes and the changelog offset atomically, so that after a crash
    the stored offset says exactly which changelog records the data already holds.
    """

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`destroy` was called."""
        return self._closed

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """Return the value stored under ``key``, or ``None``."""

    @abstractmethod
    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Return the values of ``keys`` in order (``None`` where absent), in one read."""

    @abstractmethod
    def iter_range(
        self, start: bytes, stop: bytes | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate ``(key, value)`` with ``start <= key < stop`` in key order.

        ``stop=None`` runs to the last key; ``limit`` caps how many pairs are yielded.
        The iteration sees the store as it was when this method was called.
        """

    def write(self, changes: Changes, changelog_offset: int | None = None) -> None:
        """Apply ``changes`` (``None`` deletes) and, if given, the new changelog offset, at once.

        ``changelog_offset`` is the offset of the last changelog record the store holds after
        this write; it may not go below the stored one.
        """
        self._check_open()
        check_changes(changes)
        if changelog_offset is not None:
            self._check_offset(changelog_offset)
        self._write(changes, changelog_offset)

    def concurrent_reader(self) -> RangeReader:
        """A reader another thread may use while this thread writes (visibility queries).

        The caller keeps the store open while it reads (the processor closes a partition
        only after its queries are withdrawn).
        """
        return self

    @abstractmethod
    def changelog_offset(self) -> int | None:
        """Return the offset of the last changelog record applied, or ``None`` if none was."""

    @abstractmethod
    def clear(self) -> None:
        """Delete every key and the changelog offset at once, keeping the store open."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; its data and offset stay for the next open. Idempotent."""

    @abstractmethod
    def destroy(self) -> None:
        """Close the store and delete its data and offset for good."""

    @abstractmethod
    def _write(self, changes: Changes, changelog_offset: int | None) -> None:
        """Apply already validated changes and offset atomically."""

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the partition store is closed", partition=self.partition)

    def _check_offset(self, offset: int) -> None:
        if type(offset) is not int or offset < 0:
            raise ChangelogOffsetError(
                f"changelog offset must be a non-negative int, got {offset!r}",
                stored_offset=self.changelog_offset(),
                offset=None,
                partition=self.partition,
            )
        stored = self.changelog_offset()
        if stored is not None and offset < stored:
            raise ChangelogOffsetError(
                f"changelog offset {offset} is below the stored offset {stored}; "
                "a write may only move the store forward along its changelog",
                stored_offset=stored,
                offset=offset,
                partition=self.partition,
            )


def check_key(key: object) -> None:
    """Raise :class:`InvalidStoreDataError` unless ``key`` is ``bytes``."""
    if type(key) is not bytes:
        raise InvalidStoreDataError(f"store keys must be bytes, got {type(key).__name__}: {key!r}")


def check_value(key: bytes, value: object) -> None:
    """Raise :class:`InvalidStoreDataError` unless ``value`` is ``bytes`` or ``None``."""
    if value is not None and type(value) is not bytes:
        raise InvalidStoreDataError(
            f"store values must be bytes or None, got {type(value).__name__} for key {key!r}"
        )


def check_changes(changes: Changes) -> None:
    """Validate every key and value of a write before any of it is applied."""
    for key, value in changes.items():
        check_key(key)
        check_value(key, value)


def check_limit(limit: int | None) -> None:
    """Reject a negative range limit (``None`` means no limit)."""
    if limit is not None and limit < 0:
        raise InvalidStoreDataError(f"range limit must be >= 0 or None, got {limit}")


class Store(ABC):
    """Opens, closes and destroys the partition stores of one source topic for one group."""

    def __init__(self) -> None:
        self._open: dict[int, PartitionStore] = {}

    def partition(self, partition: int) -> PartitionStore:
        """Return the open store of ``partition``, opening it (with its saved state) if needed."""
        if type(partition) is not int or partition < 0:
            raise InvalidStoreDataError(f"partition must be a non-negative int, got {partition!r}")
        store = self._open.get(partition)
        if store is None or store.closed:
            store = self._open_partition(partition)
            self._open[partition] = store
        return store

    def open_partitions(self) -> frozenset[int]:
        """The partitions whose stores are open now."""
        return frozenset(p for p, store in self._open.items() if not store.closed)

    def close_partition(self, partition: int) -> None:
        """Close the store of ``partition`` (on revocation), keeping its data. Idempotent."""
        store = self._open.pop(partition, None)
        if store is not None:
            store.close()

    def destroy_partition(self, partition: int) -> None:
        """Delete the data of ``partition`` for good, whether its store is open or not."""
        store = self._open.pop(partition, None)
        if store is not None:
            store.destroy()
        else:
            self._destroy_closed(partition)

    def close(self) -> None:
        """Close every open partition store."""
        for partition in list(self._open):
            self.close_partition(partition)

    @abstractmethod
    def _open_partition(self, partition: int) -> PartitionStore:
        """Open the backend store of ``partition``."""

    @abstractmethod
    def _destroy_closed(self, partition: int) -> None:
        """Delete the saved data of a partition whose store is not open."""
