"""The figures a peer reports for one closed-loop run: throughput, latency and CPU per saga.

Plain stdlib so that both the project's interpreter and the peers' one can use it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def percentile_ms(ordered_s: Sequence[float], q: float) -> float | None:
    """Return the nearest-rank ``q`` quantile (0 < q <= 1) of sorted seconds, in milliseconds."""
    if not 0 < q <= 1:
        raise ValueError(f"a quantile is in (0, 1], not {q}")
    if not ordered_s:
        return None
    rank = max(1, math.ceil(q * len(ordered_s)))
    return round(1000 * ordered_s[rank - 1], 1)


def window_figures(latencies_s: Sequence[float], window_s: float) -> dict[str, Any]:
    """Summarize the start→completed latencies of the sagas that completed in the window.

    The keys match what :mod:`bench.load` reports for kafka-sagas, so that the harness
    reads every system's figures the same way.
    """
    if window_s <= 0:
        raise ValueError(f"the measuring window must be positive, not {window_s} s")
    ordered = sorted(latencies_s)
    return {
        "window_s": window_s,
        "completed_in_window": len(ordered),
        "completed_per_s": round(len(ordered) / window_s, 1),
        "start_to_end_ms": {
            "p50": percentile_ms(ordered, 0.50),
            "p99": percentile_ms(ordered, 0.99),
        },
    }


class SteadyWindow:
    """Opens the measuring window once the closed loop is steady, and keeps its latencies.

    The warm-up lasts at least ``warmup_s`` and until ``in_flight`` sagas have completed,
    so that every lane has cycled once and the first wave's start-up cost stays out of the
    window; it gives up waiting after ``max_warmup_s``. The window then lasts
    ``duration_s``; a saga counts when it completes inside it.
    """

    def __init__(
        self,
        began: float,
        warmup_s: float,
        duration_s: float,
        in_flight: int,
        max_warmup_s: float,
    ) -> None:
        if duration_s <= 0 or in_flight <= 0 or warmup_s < 0:
            raise ValueError(
                "a steady window needs duration_s > 0, in_flight > 0 and warmup_s >= 0, "
                f"not {duration_s}, {in_flight}, {warmup_s}"
            )
        self.began = began
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.in_flight = in_flight
        self.max_warmup_s = max(max_warmup_s, warmup_s)
        self.completed = 0
        self.opened_at: float | None = None
        self.latencies_s: list[float] = []

    def record(self, started_at: float, done_at: float) -> None:
        """Note a saga that started and completed at these (monotonic) times."""
        self.completed += 1
        if self.opened_at is None:
            warm = done_at - self.began >= self.warmup_s and self.completed >= self.in_flight
            if warm or done_at - self.began >= self.max_warmup_s:
                self.opened_at = done_at
            return
        if self.opened_at < done_at <= self.opened_at + self.duration_s:
            self.latencies_s.append(done_at - started_at)

    def finished(self, now: float) -> bool:
        """Say whether the window has closed, or the warm-up has waited too long."""
        if self.opened_at is None:
            return now - self.began >= self.max_warmup_s + self.duration_s
        return now >= self.opened_at + self.duration_s

    def figures(self) -> dict[str, Any]:
        """Return the window's figures, with how long the warm-up really took."""
        warmup = None if self.opened_at is None else round(self.opened_at - self.began, 1)
        return {
            **window_figures(self.latencies_s, self.duration_s),
            "warmup_s": warmup,
            "completed_total": self.completed,
        }


def process_cpu_s(pid: int) -> float:
    """Return the CPU seconds (user + system, all threads) a live process has used (Linux)."""
    # The command name in field 2 may hold spaces; the fields after its ")" are fixed.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int, command_contains: str) -> list[int]:
    """Return the pids of ``pid``'s direct children whose command line holds a string."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid and command_contains in cmdline:
            found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU time that named processes spend over the measuring window.

    ``system`` names the processes of the system under test (server, workers), ``load``
    those that only generate load and wait for results; the total counts the system only.

    On a shared two-core box the throughput a system reaches depends on what else runs;
    its CPU time per completed saga does much less, so the peers report both.
    """

    def __init__(self, system: Mapping[str, int], load: Mapping[str, int]) -> None:
        self.system = dict(system)
        self.load = dict(load)
        self.pids = {**self.system, **self.load}
        self._start: dict[str, float] | None = None
        self.spent_s: dict[str, float] | None = None

    @property
    def started(self) -> bool:
        """Say whether the first reading was taken."""
        return self._start is not None

    def start(self) -> None:
        """Take the first reading (at the window's opening)."""
        self._start = {name: process_cpu_s(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        """Take the last reading (at the window's closing)."""
        if self._start is None:
            return
        self.spent_s = {
            name: process_cpu_s(pid) - self._start[name] for name, pid in self.pids.items()
        }

    def figures(self, completed: int) -> dict[str, Any]:
        """Return CPU ms per completed saga by process, and the system's total (load apart)."""
        if self.spent_s is None or completed == 0:
            return {"cpu_ms_per_saga": None}
        per_saga = {name: 1000 * s / completed for name, s in self.spent_s.items()}
        total = sum(per_saga[name] for name in self.system)
        rounded = {name: round(ms, 2) for name, ms in per_saga.items()}
        return {"cpu_ms_per_saga": {**rounded, "system_total": round(total, 2)}}


def listening_pid(port: int) -> int | None:
    """Return the pid of the process listening on a local TCP port, if this user can see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rpartition(":")[2], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and inodes & _socket_links(entry):
            return int(entry.name)
    return None


def _socket_links(process: Path) -> set[str]:
    """Return what a process's descriptors point at, skipping any that close while read.

    Each descriptor is read on its own: one closed by another thread between the listing
    and the read must not hide the process's other descriptors, the listener among them.
    """
    try:
        fds = list((process / "fd").iterdir())
    except OSError:
        return set()
    links = set()
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue
    return links
