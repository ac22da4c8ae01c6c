"""The child process that answers a saga processor's queries (see :mod:`processors.query_process`).

    python -m processors.query_child     # started by the processor, never by hand

Its standard input carries the job (one JSON line), then what to serve and withdraw;
its standard output carries confirmations and log records back. Everything else the
process prints (a saga module that prints on import) goes to standard error.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import rocksdict

from processors.query_process import QueryJob
from processors.query_server import QueryServer, query_app
from processors.query_service import PartitionGates, QueryService
from processors.store.secondary import SecondaryReader
from sagas.engine.versions import import_versions
from sagas.errors import SagaError

log = logging.getLogger(__name__)

CACHE_BYTES = 32 * 1024 * 1024
"""The block cache the secondaries share (the processor keeps its own)."""


class _Control:
    """Lines to the processor, from any thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            try:
                self._stream.write(json.dumps(message).encode() + b"\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                pass  # the processor is gone; reading its input ends this process


class _ToProcessor(logging.Handler):
    def __init__(self, control: _Control) -> None:
        super().__init__(logging.WARNING)
        self._control = control

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        self._control.send(
            {"log": record.levelno, "logger": record.name, "message": f"query process: {message}"}
        )


def main() -> int:
    # The processor stops this process by closing its input; a Ctrl-C or SIGTERM sent to
    # the whole group must not end it first (the processor would start another).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    control = _Control(os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)
    root = logging.getLogger()
    root.addHandler(_ToProcessor(control))
    root.setLevel(logging.WARNING)
    job = QueryJob(**json.loads(sys.stdin.readline()))
    sys.path[:] = list(job.sys_path)
    try:
        versions = import_versions(job.saga, job.modules, job.versions)
    except (SagaError, ImportError) as exc:
        log.error("cannot load saga %r: %s", job.saga, exc)
        return 1
    gates = PartitionGates()
    service = QueryService(versions, gates, query_timeout=timedelta(seconds=job.query_timeout_s))
    server = QueryServer(query_app(service, job.token), socket.socket(fileno=job.fd)).start()
    scratch = Path(tempfile.mkdtemp(prefix=f"sagas-query-{job.saga}-"))
    cache = rocksdict.Cache(CACHE_BYTES)
    try:
        for line in sys.stdin:
            message = json.loads(line)
            if message["op"] == "serve":
                partition = message["partition"]
                _withdraw(gates, partition)  # served again after a restore: read it anew
                try:
                    reader = SecondaryReader(
                        message["path"], scratch / str(partition), partition, cache=cache
                    )
                except SagaError as exc:
                    # Unserved, the partition's requests get the retryable answer.
                    log.error("cannot serve partition %d: %s", partition, exc)
                    continue
                gates.serve(partition, reader, message["count"])
            elif message["op"] == "withdraw":
                for partition in message["partitions"]:
                    _withdraw(gates, partition)
                control.send({"ack": message["ack"]})
    finally:
        server.stop()
        for partition in gates.served():
            _withdraw(gates, partition)
        service.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _withdraw(gates: PartitionGates, partition: int) -> None:
    """Stop answering for ``partition`` and close its secondary, once no request reads it."""
    withdrawn = gates.withdraw(partition)
    if isinstance(withdrawn, SecondaryReader):
        withdrawn.close()


if __name__ == "__main__":
    sys.exit(main())
