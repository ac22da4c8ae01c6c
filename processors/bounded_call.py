"""Waiting on a client call for no longer than its limit, even when the call itself does
not return.

librdkafka's ``send_offsets_to_transaction`` can block past its own timeout when the
consumer group's coordinator dies mid-call (the coordinator request is never timed out,
and a broker dropped from the metadata never wakes it again). The processing thread must
not freeze with it: the call runs on a thread of its own, and the caller stops waiting
once the limit has passed. The client stays with the blocked call, so the caller must
give it up and start over with new clients; the thread is a daemon, so a call that never
returns does not keep the process from exiting either.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Outcome = tuple[bool, Any]
"""(True, value) for a call that returned, (False, exception) for one that raised."""


class CallOverrunError(TimeoutError):
    """A call did not return within its limit; it may still be running."""


class BoundedCaller:
    """Runs calls one at a time on its own daemon thread, waiting on each for at most its
    limit. After an overrun it refuses further calls: its thread may never come back."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self.overran = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, function: Callable[[], T], limit_s: float) -> T:
        """``function()``'s value (or its exception, raised here); raises
        :class:`CallOverrunError` when it has not returned after ``limit_s`` seconds."""
        if self.overran:
            raise CallOverrunError("an earlier call overran its limit and may still run")
        self._calls.put(function)
        try:
            returned, outcome = self._outcomes.get(timeout=limit_s)
        except queue.Empty:
            self.overran = True
            raise CallOverrunError(f"the call did not return within {limit_s:g} s") from None
        if returned:
            value: T = outcome
            return value
        raise outcome

    def close(self) -> None:
        """Let the thread end once it is idle (at once, unless a call overran)."""
        self._calls.put(None)

    def _serve(self) -> None:
        while (function := self._calls.get()) is not None:
            try:
                self._outcomes.put((True, function()))
            except BaseException as exc:  # handed to the caller, which raises it
                self._outcomes.put((False, exc))
