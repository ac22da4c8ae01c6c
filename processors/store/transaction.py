"""Staged writes over a partition store for one batch, applied once after the Kafka commit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

from processors.store.base import PartitionStore, check_key, check_limit, check_value
from processors.store.errors import StoreError


class StoreTransaction:
    """Reads through staged writes to the store; writes only stage, in a dict.

    The saga processor opens one per batch, produces :meth:`changes` to the changelog in
    its Kafka transaction, commits that, and then calls :meth:`commit` with the offset of
    the last changelog record, which writes everything to the store in one atomic write.
    """

    def __init__(self, store: PartitionStore) -> None:
        self.store = store
        self._staged: dict[bytes, bytes | None] = {}
        self._done = False

    def get(self, key: bytes) -> bytes | None:
        """Return the staged value of ``key`` (``None`` if staged deleted), else the stored one."""
        staged = self._staged
        if key in staged:
            return staged[key]
        return self.store.get(key)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Like :meth:`get` for many keys, reading the unstaged ones from the store at once."""
        staged = self._staged
        missing = [key for key in keys if key not in staged]
        stored = dict(zip(missing, self.store.get_many(missing), strict=True))
        return [staged[key] if key in staged else stored[key] for key in keys]

    def set(self, key: bytes, value: bytes) -> None:
        """Stage ``key`` to hold ``value``."""
        self._check_active()
        check_key(key)
        if value is None:
            raise StoreError(f"use delete() to remove a key, not set(key, None): key {key!r}")
        check_value(key, value)
        self._staged[key] = value

    def delete(self, key: bytes) -> None:
        """Stage the deletion of ``key`` (a tombstone on the changelog)."""
        self._check_active()
        check_key(key)
        self._staged[key] = None

    def iter_range(
        self, start: bytes, stop: bytes | None = None, *, limit: int | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate ``(key, value)`` with ``start <= key < stop`` in key order, staged first."""
        check_key(start)
        if stop is not None:
            check_key(stop)
        check_limit(limit)
        staged = sorted(
            (key, value)
            for key, value in self._staged.items()
            if start <= key and (stop is None or key < stop)
        )
        if not staged:
            return self.store.iter_range(start, stop, limit=limit)
        return _merge(self.store.iter_range(start, stop), staged, limit)

    def changes(self) -> Mapping[bytes, bytes | None]:
        """The staged writes (``None`` = delete), as a read-only view, for the changelog."""
        return MappingProxyType(self._staged)

    def __len__(self) -> int:
        return len(self._staged)

    def commit(self, changelog_offset: int | None) -> None:
        """Write the staged changes and the changelog offset to the store in one atomic write."""
        self._check_active()
        self._done = True
        if self._staged or changelog_offset is not None:
            self.store.write(self._staged, changelog_offset)

    def discard(self) -> None:
        """Drop the staged changes (the Kafka transaction was aborted)."""
        self._done = True
        self._staged = {}

    @property
    def done(self) -> bool:
        """Whether :meth:`commit` or :meth:`discard` was called."""
        return self._done

    def _check_active(self) -> None:
        if self._done:
            raise StoreError(
                "the store transaction was already committed or discarded",
                partition=self.store.partition,
            )


def _merge(
    stored: Iterator[tuple[bytes, bytes]],
    staged: list[tuple[bytes, bytes | None]],
    limit: int | None,
) -> Iterator[tuple[bytes, bytes]]:
    remaining = -1 if limit is None else limit
    staged_items = iter(staged)
    from_store = next(stored, None)
    from_staged = next(staged_items, None)
    while remaining != 0:
        if from_store is not None and (from_staged is None or from_store[0] < from_staged[0]):
            yield from_store
            remaining -= 1
            from_store = next(stored, None)
            continue
        if from_staged is None:
            return
        key, value = from_staged
        if from_store is not None and from_store[0] == key:
            from_store = next(stored, None)
        from_staged = next(staged_items, None)
        if value is not None:
            yield key, value
            remaining -= 1
