"""The processes of the chaos run: saga processors and step workers of the trip saga and of
its child insurance saga, each a ``sagas worker`` process with its own state directory and
instance id, that nemeses kill, pause, scale and replace; and the probes that tell when
the groups and the sagas have recovered."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from sagas.config import KafkaSettings
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants import ledger

SAGA_REF = "tests.chaos.chaos_saga:saga"
CHILD_SAGA_REF = "tests.chaos.chaos_saga:insurance"
ROLES: dict[str, tuple[str, str]] = {
    "processor": (SAGA_REF, "processor"),
    "steps": (SAGA_REF, "steps"),
    "child_processor": (CHILD_SAGA_REF, "processor"),
    "child_steps": (CHILD_SAGA_REF, "steps"),
}
"""Each role of the fleet: the saga its members serve and their ``--role``."""


@dataclass
class Fleet:
    """The live members of each role; every new member gets a new instance id and state dir."""

    kafka: KafkaSettings
    workdir: Path
    members: dict[str, list[WorkerProcess]] = field(default_factory=lambda: {r: [] for r in ROLES})
    _serial: int = 0

    def add(self, role: str) -> WorkerProcess:
        """Start one more member of ``role`` under a new instance id."""
        self._serial += 1
        name = f"{role.replace('_', '-')}-{self._serial}"
        saga_ref, worker_role = ROLES[role]
        process = WorkerProcess(
            saga_ref,
            self.kafka,
            role=worker_role,
            state_dir=self.workdir / "state" / name,
            instance_id=name,
            log_path=self.workdir / f"{name}.log",
        )
        process.start()
        self.members[role].append(process)
        return process

    def stop_one(self, role: str) -> None:
        """Stop the oldest member of ``role`` gracefully (SIGTERM: it leaves the group)."""
        process = self.members[role].pop(0)
        process.stop()

    def kill_one(self, role: str, *, restart: bool) -> WorkerProcess:
        """SIGKILL the oldest member; restart it under its id, or replace it for good."""
        process = self.members[role].pop(0)
        process.kill()
        if restart:
            process.start()
            self.members[role].append(process)
            return process
        return self.add(role)

    def scale(self, role: str, count: int) -> None:
        """Add or gracefully stop members until ``count`` run."""
        while len(self.members[role]) < count:
            self.add(role)
        while len(self.members[role]) > count:
            self.stop_one(role)

    def live_ids(self) -> set[str]:
        return {p.instance_id or "" for ps in self.members.values() for p in ps if p.running}

    def dead(self) -> list[WorkerProcess]:
        """Members that exited by themselves (a runtime bug the run must report)."""
        return [p for ps in self.members.values() for p in ps if not p.running]

    def stop_all(self) -> dict[str, int]:
        return {p.instance_id or "": p.stop() for ps in self.members.values() for p in ps}


def pause(process: WorkerProcess) -> None:
    os.kill(process.pid, signal.SIGSTOP)


def resume(process: WorkerProcess) -> None:
    os.kill(process.pid, signal.SIGCONT)


class Progress:
    """Samples the effect ledger's length every 50 ms, to see when the saga stalls."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append((time.monotonic(), ledger.count_lines(self.path)))

    def count(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def wait_for_advance(self, since: float, timeout: float) -> float | None:
        """The first moment after ``since`` at which the ledger grew; None if it did not
        within ``timeout`` from now."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            samples = [s for s in self.samples if s[0] >= since]
            before = [s for s in self.samples if s[0] < since]
            base = before[-1][1] if before else 0
            for t, n in samples:
                if n > base:
                    return t
            time.sleep(0.05)
        return None

    def longest_stall(self, start: float, end: float) -> float:
        """The longest time in [start, end] with no attempt added to the ledger."""
        return self._stall(start, end)[0]

    def stall_end(self, start: float, end: float) -> float:
        """When the longest stall in [start, end] ended (the ledger grew again)."""
        return self._stall(start, end)[1]

    def _stall(self, start: float, end: float) -> tuple[float, float]:
        window = [s for s in self.samples if start <= s[0] <= end]
        longest, ended, last_change = 0.0, start, start
        previous = window[0][1] if window else 0
        for t, n in window:
            if n != previous:
                if t - last_change > longest:
                    longest, ended = t - last_change, t
                last_change, previous = t, n
        if window and window[-1][0] - last_change > longest:
            longest, ended = window[-1][0] - last_change, window[-1][0]
        return longest, ended


def groups_settled(admin: AdminClient, groups: dict[str, int], live: set[str]) -> bool:
    """Whether each group is stable, has only live members, and assigns all its partitions."""
    try:
        described = admin.describe_consumer_groups(list(groups))
        for name, future in described.items():
            group, partitions = future.result(timeout=30), groups[name]
            if str(group.state).rsplit(".", 1)[-1] != "STABLE":
                return False
            members = {m.group_instance_id for m in group.members}
            if not members or not members <= live:
                return False
            assigned = sum(len(m.assignment.topic_partitions) for m in group.members)
            if assigned < partitions:
                return False
    except Exception:  # the broker may be down mid-fault: not settled yet
        return False
    return True


def wait_settled(
    admin: AdminClient, groups: dict[str, int], fleet: Fleet, timeout: float
) -> float | None:
    """Seconds until :func:`groups_settled` holds; None if it did not within ``timeout``."""
    return _seconds_until(lambda: groups_settled(admin, groups, fleet.live_ids()), timeout, 0.1)


def fully_replicated(admin: AdminClient) -> bool:
    """Whether every partition, the internal topics' too, has all its replicas in sync."""
    try:
        topics = admin.list_topics(timeout=5).topics
    except Exception:  # a broker may still be starting: not replicated yet
        return False
    return all(
        partition.error is None and set(partition.isrs) == set(partition.replicas)
        for topic in topics.values()
        for partition in topic.partitions.values()
    )


def wait_replicated(admin: AdminClient, timeout: float) -> float | None:
    """Seconds until :func:`fully_replicated` holds; None if it did not within ``timeout``."""
    return _seconds_until(lambda: fully_replicated(admin), timeout, 0.2)


def _seconds_until(condition: Callable[[], bool], timeout: float, every: float) -> float | None:
    """Seconds until ``condition()`` holds, asked every ``every`` s; None after ``timeout``."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            return time.monotonic() - began
        time.sleep(every)
    return None
