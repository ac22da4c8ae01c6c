"""Key-ordered concurrency: items run at once up to a limit, those of one key in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class KeyedQueue(Generic[K, T]):
    """Decides when each submitted item may start: at most ``max_running`` at once, and
    an item only after every earlier item of its key has finished.

    The step worker keys commands by workflow and step, so a step's attempts and then
    its compensation run one after another while other workflows' commands run beside
    them. The caller starts what :meth:`submit` and :meth:`done` return.
    """

    def __init__(self, max_running: int) -> None:
        self.max_running = max_running
        self.running = 0
        """Items started and not yet done."""
        self._chains: dict[K, deque[T]] = {}
        self._waiting: deque[T] = deque()

    def submit(self, key: K, item: T) -> list[T]:
        """Queue ``item`` behind the earlier items of ``key``; what may start now."""
        chain = self._chains.get(key)
        if chain is not None:
            chain.append(item)  # starts when the earlier item of this key is done
            return []
        self._chains[key] = deque((item,))
        return self._admit(item)

    def queued(self, key: K) -> tuple[T, ...]:
        """The items of ``key`` not yet done (the first may be running), oldest first."""
        chain = self._chains.get(key)
        return tuple(chain) if chain is not None else ()

    def done(self, key: K) -> list[T]:
        """The running item of ``key`` has finished; what may start now."""
        self.running -= 1
        started = self._admit(self._waiting.popleft()) if self._waiting else []
        chain = self._chains[key]
        chain.popleft()
        if chain:
            started += self._admit(chain[0])
        else:
            del self._chains[key]
        return started

    def clear(self) -> None:
        """Forget every item, running or queued (their runs are abandoned)."""
        self.running = 0
        self._chains.clear()
        self._waiting.clear()

    def _admit(self, item: T) -> list[T]:
        if self.running >= self.max_running:
            self._waiting.append(item)  # started when a running item is done
            return []
        self.running += 1
        return [item]
