"""Would a process pool pay for CPU-bound plain-function steps? Threads against processes.

A step worker runs a plain function in a thread (``asyncio.to_thread``), so CPU-bound
steps share one core through the GIL however many run at once. This runs the same
CPU-bound function for N concurrent commands both ways — threads as the worker runs
them today, and a ``ProcessPoolExecutor`` with one process per core — in alternating
rounds, and writes the wall times and throughput to ``bench/results/``::

    python -m bench.step_executors [commands] [rounds]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.run import machine

RESULTS = Path(__file__).resolve().parent / "results"
WORK = 300_000
"""Loop iterations of one step: about 20-40 ms of pure Python on a current core."""


def cpu_step(n: int) -> int:
    """A CPU-bound step body: pure Python arithmetic, holding the GIL throughout."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


async def _threads(commands: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(cpu_step, WORK) for _ in range(commands)))
    return time.perf_counter() - started


async def _processes(commands: int, pool: concurrent.futures.ProcessPoolExecutor) -> float:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    await asyncio.gather(*(loop.run_in_executor(pool, cpu_step, WORK) for _ in range(commands)))
    return time.perf_counter() - started


def measure(commands: int, rounds: int) -> dict[str, Any]:
    """Wall seconds of ``commands`` concurrent steps per round, threads and processes."""
    cores = os.cpu_count() or 1
    single = time.perf_counter()
    cpu_step(WORK)
    one_step_s = time.perf_counter() - single
    threads: list[float] = []
    processes: list[float] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=cores) as pool:
        # Warm the pool: process start-up is paid once per worker, not per step.
        list(pool.map(cpu_step, [1] * cores))
        for i in range(rounds):
            order = ("threads", "processes") if i % 2 == 0 else ("processes", "threads")
            for kind in order:
                if kind == "threads":
                    threads.append(asyncio.run(_threads(commands)))
                else:
                    processes.append(asyncio.run(_processes(commands, pool)))
    t, p = statistics.median(threads), statistics.median(processes)
    return {
        "commands_per_round": commands,
        "rounds": rounds,
        "process_pool_workers": cores,
        "one_step_seconds": round(one_step_s, 4),
        "threads_wall_seconds": [round(x, 3) for x in threads],
        "processes_wall_seconds": [round(x, 3) for x in processes],
        "threads_median_s": round(t, 3),
        "processes_median_s": round(p, 3),
        "threads_steps_per_s": round(commands / t, 1),
        "processes_steps_per_s": round(commands / p, 1),
        "speedup_processes_over_threads": round(t / p, 2),
    }


def main(argv: list[str]) -> None:
    commands = int(argv[0]) if argv else 32
    rounds = int(argv[1]) if len(argv) > 1 else 6
    load_before = os.getloadavg()
    figures = measure(commands, rounds)
    host = machine()
    now = datetime.now(UTC)
    result = {
        "date": now.date().isoformat(),
        "time_utc": now.strftime("%H:%M:%S"),
        "machine": host,
        "python": sys.version.split()[0],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "bench": f"python -m bench.step_executors {commands} {rounds}",
        **figures,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{result['date']}-step-executors-{host['slug']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    print(f"written to {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
