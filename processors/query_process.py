"""The query endpoint in a process of its own, beside the saga processor.

The processor's process is bound by its interpreter lock: a request answered in a thread
of it takes its Python time (about 1.4 ms) from the thread that decides, 7% of that
thread at 50 requests/s. So a child process answers instead
(:mod:`processors.query_child`), reading each served partition's RocksDB database as a
secondary instance, on the listening socket the processor bound and announced. The
processor tells it over its standard input which partitions to serve and which to
withdraw, and waits until it confirms a withdrawal before it lets the partition go: it
never answers for a partition the processor no longer holds. A child that dies is
started again and serves what the processor holds; one that does not confirm a
withdrawal in time is killed. The child exits when its standard input closes, so it
does not outlive the processor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import IO, Any

from processors.metrics import Metrics

log = logging.getLogger(__name__)

WITHDRAW_WAIT_S = 10.0
"""How long a withdrawal may take before the child is killed (a request holding the
partition finishes well within it: a query function's limit is 2 s by default)."""

RESTART_DELAY_S = 1.0
"""The pause before a child that died is started again; it doubles while children die
young (within :data:`YOUNG_S` of their start), up to :data:`MAX_RESTART_DELAY_S`."""

MAX_RESTART_DELAY_S = 30.0

YOUNG_S = 60.0

STOP_WAIT_S = 5.0
"""How long a child may take to exit once told to, before it is killed."""


@dataclass(frozen=True, slots=True)
class QueryJob:
    """What the child needs to answer for one saga (it crosses as the first JSON line)."""

    saga: str
    modules: tuple[str, ...]
    """The modules that declare the saga's versions, to import them from."""
    versions: tuple[int, ...]
    token: str | None
    query_timeout_s: float
    sys_path: tuple[str, ...]
    """The processor's import path, where the saga's modules are found."""
    fd: int = -1
    """The listening socket's descriptor, the same number in the child."""


class QueryProcess:
    """Starts the child, tells it what to serve, and starts it again if it dies."""

    def __init__(
        self, job: QueryJob, bound: socket.socket, *, metrics: Metrics | None = None
    ) -> None:
        self._job = QueryJob(**{**asdict(job), "fd": bound.fileno()})
        self._metrics = metrics or Metrics()
        self._socket = bound
        self._lock = threading.Lock()
        self._served: dict[int, tuple[str, int]] = {}
        """Partition -> (database path, partition count): what a new child must serve."""
        self._acks: dict[int, threading.Event] = {}
        self._next_ack = 0
        self._closed = threading.Event()
        """Set (under the lock) once :meth:`close` is called: no child is started after."""
        self._process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="saga-query-process", daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int:
        """The child's process id (a new one after a restart)."""
        return self._process.pid

    def serve(self, partition: int, path: str, partition_count: int) -> None:
        """Have the child answer for a restored partition, read at ``path``."""
        with self._lock:
            self._served[partition] = (path, partition_count)
            self._send(_serve_message(partition, path, partition_count))

    def withdraw(self, partitions: list[int]) -> None:
        """Have the child stop answering for ``partitions``; returns once it has."""
        if not partitions:
            return
        done = threading.Event()
        with self._lock:
            for partition in partitions:
                self._served.pop(partition, None)
            ack, self._next_ack = self._next_ack, self._next_ack + 1
            self._acks[ack] = done
            process = self._process
            self._send({"op": "withdraw", "partitions": partitions, "ack": ack})
        deadline = time.monotonic() + WITHDRAW_WAIT_S
        while not done.wait(0.1):
            if process.poll() is not None:
                return  # dead, it answers for nothing; the next one is told what is held
            if time.monotonic() >= deadline:
                break
        else:
            return
        log.error(
            "the query process did not withdraw partition(s) %s within %.0f s: killing it",
            partitions,
            WITHDRAW_WAIT_S,
        )
        process.kill()
        # Dead, it answers for nothing; the one started next serves what is still held.
        process.wait()

    def close(self) -> None:
        """Stop the child (it exits once its standard input closes)."""
        with self._lock:
            self._closed.set()
            process = self._process
        _close_quietly(process.stdin)
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("the query process did not stop within %.0f s: killing it", STOP_WAIT_S)
            process.kill()
            process.wait()
        self._watcher.join(STOP_WAIT_S)

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "processors.query_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(self._job.fd,),
        )
        assert process.stdin is not None
        # The job, token included, crosses on the pipe: a command line is visible to all.
        process.stdin.write(json.dumps(asdict(self._job)).encode() + b"\n")
        process.stdin.flush()
        return process

    def _send(self, message: dict[str, Any]) -> None:
        # Under the lock. A child that has died reads nothing: the watcher starts another,
        # which is told what is served then.
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def _watch(self) -> None:
        started, delay = time.monotonic(), RESTART_DELAY_S / 2
        while True:
            process = self._process
            assert process.stdout is not None
            for line in process.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("the query process wrote %r", line[:200])
                    continue
                self._receive(message)
            process.wait()
            process.stdout.close()
            with self._lock:
                _close_quietly(process.stdin)
                # A withdrawal a dead child did not confirm is done: it answers nothing.
                for done in self._acks.values():
                    done.set()
                self._acks.clear()
                if self._closed.is_set():
                    return
            self._metrics.query_process_exited(self._job.saga)
            young = time.monotonic() - started < YOUNG_S
            delay = min(delay * 2, MAX_RESTART_DELAY_S) if young else RESTART_DELAY_S
            log.error(
                "the query process exited (code %s); starting another in %.0f s",
                process.returncode,
                delay,
            )
            # Told to close meanwhile, the watcher stops at once rather than sleep on.
            if self._closed.wait(delay):
                return
            with self._lock:
                if self._closed.is_set():
                    return
                started = time.monotonic()
                self._process = self._spawn()
                for partition, (path, count) in self._served.items():
                    self._send(_serve_message(partition, path, count))

    def _receive(self, message: dict[str, Any]) -> None:
        if "ack" in message:
            with self._lock:
                done = self._acks.pop(message["ack"], None)
            if done is not None:
                done.set()
        elif "log" in message:
            # The child's log records join the processor's, in its format and level.
            logging.getLogger(message["logger"]).log(message["log"], "%s", message["message"])


def _serve_message(partition: int, path: str, partition_count: int) -> dict[str, Any]:
    return {"op": "serve", "partition": partition, "path": path, "count": partition_count}


def _close_quietly(stream: IO[bytes] | None) -> None:
    if stream is None:
        return
    with contextlib.suppress(BrokenPipeError):
        stream.close()
