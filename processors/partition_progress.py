"""Which offsets of a partition may be committed while commands finish out of order."""

from __future__ import annotations

from collections import deque


class PartitionProgress:
    """Consumed offsets of one partition, in order, and which of them are done.

    Commands of different workflows finish in any order, but a committed offset says
    that everything before it is done; so the committable position is the first offset
    not yet done (or just past the last consumed one).
    """

    __slots__ = ("_done", "_next", "_pending")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = None

    def consumed(self, offset: int) -> None:
        """Record that ``offset`` was read and is now being worked on."""
        self._pending.append(offset)
        self._next = offset + 1

    def done(self, offset: int) -> None:
        """Record that the work of ``offset`` is finished (answered or skipped)."""
        self._done.add(offset)
        pending, done = self._pending, self._done
        while pending and pending[0] in done:
            done.discard(pending.popleft())

    def committable(self) -> int | None:
        """The offset to commit: everything before it is done. ``None`` if nothing was read."""
        if self._pending:
            return self._pending[0]
        return self._next

    @property
    def in_flight(self) -> int:
        """Offsets read and not yet done."""
        return len(self._pending) - len(self._done)
