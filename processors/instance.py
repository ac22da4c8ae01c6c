"""A process's stable instance id, kept in its state directory, and the lock that makes it its own.

The id names the process in its consumer group (static membership, ``group.instance.id``)
and in its transactional id. A process restarted with the same state directory comes back
under the same id: the group hands it its partitions at once instead of waiting out the
dead incarnation's session timeout, and its first transaction fences the old one's.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from confluent_kafka import Consumer, KafkaException

from sagas.errors import ConfigurationError

log = logging.getLogger(__name__)

ID_FILE = "instance-id"
LOCK_FILE = "instance.lock"
_HOST_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_HOST_LENGTH = 40


class StateDirInUseError(ConfigurationError):
    """Another live process already uses this state directory for the same group."""

    def __init__(self, directory: Path, role: str, holder: str) -> None:
        super().__init__(
            f"state directory {directory} is in use by another {role} process{holder};"
            " give each process its own --state-dir",
            non_retryable=True,
        )
        self.directory = directory
        self.role = role


@dataclass(slots=True)
class InstanceClaim:
    """This process's instance id, held with an exclusive lock on its state directory.

    The lock is released by :meth:`release`, or by the OS when the process dies, so a
    SIGKILLed process never leaves a stale claim behind.
    """

    instance_id: str
    source: str
    """Where the id came from: the id file's path, or ``--instance-id``."""
    _lock: IO[str] | None = field(default=None, repr=False)

    def release(self) -> None:
        """Give the state directory up (idempotent)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def derive_instance_id(state_dir: Path, role: str, queues: Iterable[str] = ()) -> str:
    """A readable id unique to this host, state directory, role and queues.

    ``<host>-<role>-<hash>``: the host and role say at a glance who a group member is;
    the hash of the absolute state directory and queues keeps two processes of one
    role on one host apart.
    """
    host = _HOST_CHARS.sub("-", socket.gethostname()).strip("-")[:_MAX_HOST_LENGTH] or "host"
    identity = "\0".join([str(state_dir.resolve()), role, *sorted(queues)])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{host}-{role}-{digest}"


def claim_instance(
    state_dir: Path,
    group: str,
    role: str,
    *,
    queues: Iterable[str] = (),
    explicit: str | None = None,
) -> InstanceClaim:
    """Lock ``state_dir/<group>`` for this process and return its instance id.

    The id is ``explicit`` when given; otherwise the one stored in the directory, or a
    new one from :func:`derive_instance_id`, stored there for the next start. Raises
    :class:`StateDirInUseError` when a live process holds the directory already: two
    members under one static id would fence each other's transactions without end.
    """
    directory = state_dir / group
    directory.mkdir(parents=True, exist_ok=True)
    lock = (directory / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip()
        lock.close()
        raise StateDirInUseError(directory, role, f" (pid {pid})" if pid else "") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    if explicit is not None:
        instance, source = explicit, "--instance-id"
    else:
        path = directory / ID_FILE
        stored = path.read_text().strip() if path.exists() else ""
        instance = stored or derive_instance_id(state_dir, role, queues)
        if not stored:
            path.write_text(instance + "\n")
        source = str(path)
    log.info("%s instance id %s (from %s)", role, instance, source)
    return InstanceClaim(instance, source, lock)


def leave_and_close(consumer: Consumer, timeout_s: float = 2.0) -> None:
    """Close a static member so that the group reassigns its partitions at once.

    librdkafka's ``close()`` keeps a static member in its group until the session
    timeout (45 s), so that a restart under the same id finds its partitions waiting;
    a process stopped on purpose may never come back. Unsubscribing first makes
    librdkafka send a LeaveGroup, which removes the member, and the revocation runs the
    usual callbacks while the consumer still owns its partitions. A SIGKILLed process
    sends nothing, and its restart takes the partitions back at once.
    """
    deadline = time.monotonic() + timeout_s
    try:
        consumer.unsubscribe()
        while consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.05)
        # One more round so the LeaveGroup queued after the revocation goes out.
        consumer.poll(0.05)
    except KafkaException as exc:
        log.warning("leaving the consumer group failed: %s", exc)
    try:
        consumer.close()
    except KafkaException as exc:
        log.warning("closing the consumer failed: %s", exc)
