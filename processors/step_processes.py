"""The step worker's process pool: runs ``executor="process"`` actions, kills them at need.

Each process of the pool runs one call at a time, sent over its own pipe; a call that is
cancelled (its deadline passed, the attempt was superseded, the worker stops) has its
process killed and replaced, so its late answer can never come. Processes are spawned
(not forked from a worker that runs Kafka clients' threads) when first needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from sagas.engine.process_call import (
    ProcessCall,
    ProcessOutcome,
    details_json,
    details_of,
    run_call,
)
from sagas.errors import SagaError

_CONTEXT = multiprocessing.get_context("spawn")


def serve(conn: Connection) -> None:
    """A pool process: run the calls that come over ``conn`` until it closes."""
    # Ctrl-C reaches the whole process group; the worker stops its pool itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with conn:
        while True:
            try:
                call = conn.recv()
            except EOFError:
                return
            if call is None:
                return
            outcome = run_call(call, lambda details: conn.send(("beat", details_json(details))))
            conn.send(("done", outcome))


class _Slot:
    """One process of the pool and the worker's end of its pipe."""

    def __init__(self) -> None:
        self.conn, child = _CONTEXT.Pipe()
        self.process: BaseProcess = _CONTEXT.Process(target=serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def stop(self, *, kill: bool) -> None:
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process.close()
        self.conn.close()


class StepProcessPool:
    """Up to ``size`` processes running process calls, owned by one worker's loop."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise SagaError(f"a process pool needs at least one process, got {size}")
        self.size = size
        self.killed = 0
        """Processes killed because their call was cancelled."""
        self._idle: list[_Slot] = []
        self._busy: set[_Slot] = set()
        self._room = asyncio.Semaphore(size)
        self._closed = False

    async def run(self, call: ProcessCall, beat: Callable[[Any], None] | None) -> ProcessOutcome:
        """Run ``call`` in a process; cancelling it kills that process."""
        async with self._room:
            return await self._run_in(self._take(), call, beat)

    async def _run_in(
        self, slot: _Slot, call: ProcessCall, beat: Callable[[Any], None] | None
    ) -> ProcessOutcome:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ProcessOutcome] = loop.create_future()

        def readable() -> None:
            try:
                kind, value = slot.conn.recv()
                if kind == "beat":
                    if beat is not None:
                        beat(details_of(value))
                    return
                outcome = value
            except EOFError:
                code = slot.process.exitcode
                error: BaseException = SagaError(
                    f"the process running step {call.step!r} ended unexpectedly "
                    f"(exit code {code})",
                    saga=call.types.saga, workflow_id=call.workflow_id, step=call.step,
                )  # fmt: skip
                loop.remove_reader(slot.conn.fileno())
                if not answer.done():
                    answer.set_exception(error)
                return
            except Exception as exc:  # the beat refused (superseded): end the call with it
                loop.remove_reader(slot.conn.fileno())
                if not answer.done():
                    answer.set_exception(exc)
                return
            loop.remove_reader(slot.conn.fileno())
            if not answer.done():
                answer.set_result(outcome)

        slot.conn.send(call)
        loop.add_reader(slot.conn.fileno(), readable)
        try:
            outcome = await answer
        except BaseException:
            self._discard(slot, loop)
            raise
        self._release(slot)
        return outcome

    def _take(self) -> _Slot:
        if self._closed:
            raise SagaError("the step worker's process pool is shut down")
        slot = self._idle.pop() if self._idle else _Slot()
        self._busy.add(slot)
        return slot

    def _release(self, slot: _Slot) -> None:
        self._busy.discard(slot)
        if self._closed:
            slot.stop(kill=False)
            return
        self._idle.append(slot)

    def _discard(self, slot: _Slot, loop: asyncio.AbstractEventLoop) -> None:
        """Kill the process of a call that did not finish; the next call spawns a fresh one."""
        if slot not in self._busy:
            return  # already stopped by close()
        self._busy.discard(slot)
        loop.remove_reader(slot.conn.fileno())
        slot.stop(kill=True)
        self.killed += 1

    def close(self) -> None:
        """Stop every process: idle ones are asked to exit, running ones are killed."""
        self._closed = True
        for slot in self._idle:
            slot.stop(kill=False)
        self._idle.clear()
        loop = asyncio.get_running_loop()
        for slot in list(self._busy):
            loop.remove_reader(slot.conn.fileno())
            slot.stop(kill=True)
        self._busy.clear()


def default_pool_size() -> int:
    """One process per core."""
    return os.cpu_count() or 1
