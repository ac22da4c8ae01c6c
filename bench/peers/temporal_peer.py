"""Temporal running the 4-step order saga: completed sagas/s at saturation on this box.

The dev server (the Temporal CLI built by :mod:`bench.peers.install`; one process, one
history shard, SQLite) listens on 127.0.0.1 only, a worker process runs the workflow and
its four activities, and this process keeps ``in_flight`` workflows running in a closed
loop, counting completions over a steady window after a warm-up. The server, the worker
and the load share the box's two cores, as kafka-sagas' broker, processors and load do.

The measuring half needs ``temporalio`` and runs in the peers' environment, where
kafka-sagas is not installed; so it imports nothing from ``sagas`` and reports a failure
by its exit status, which :func:`run_temporal` turns into a ``PeerError``.

Run alone: ``python -m bench.peers.temporal_peer [--quick]``; the harness calls
:func:`run_temporal`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.peers.figures import CpuMeter, SteadyWindow, child_pids

TASK_QUEUE = "order-saga"
READY_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 10.0

# The dev server's stores. "file" (the default) is a SQLite file in WAL mode that does not
# wait for the disk: it survives a crash of the server but not of the machine, the same
# durability as the benchmark's Kafka broker, whose writes sit in the page cache.
# "file-fsync" keeps SQLite's defaults (rollback journal, synchronous=FULL: every
# transaction waits for the disk); "memory" loses everything when the server stops.
STORES = {
    "file": ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=off"],
    "file-fsync": [],
    "memory": [],
}


def run_temporal(
    duration_s: float = 25.0,
    in_flight: int = 300,
    warmup_s: float = 8.0,
    *,
    store: str = "file",
    temporal_binary: str | None = None,
) -> dict[str, Any]:
    """Measure Temporal's completed sagas/s with ``in_flight`` workflows kept running.

    Installs the dev server and the SDK first if they are missing. Runs in the peers'
    environment (a child process) when this interpreter has no ``temporalio``. ``store``
    is one of :data:`STORES`.
    """
    if store not in STORES:
        raise ValueError(f"store must be one of {sorted(STORES)}, not {store!r}")
    if temporal_binary is None:
        from bench.peers.install import ensure_temporal_binary

        temporal_binary = str(ensure_temporal_binary())
    args = [
        "--duration",
        str(duration_s),
        "--in-flight",
        str(in_flight),
        "--warmup",
        str(warmup_s),
        "--store",
        store,
        "--temporal-binary",
        temporal_binary,
        "--json",
    ]
    if importlib.util.find_spec("temporalio") is not None:
        return asyncio.run(_measure(Path(temporal_binary), duration_s, in_flight, warmup_s, store))
    from bench.peers.install import run_in_peer_python

    budget = warmup_s + duration_s + 3 * READY_TIMEOUT_S
    out = run_in_peer_python("bench.peers.temporal_peer", args, timeout_s=budget)
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def worker_settings(in_flight: int) -> dict[str, Any]:
    """Return the worker's tuning: enough slots that no saga waits for one."""
    slots = max(100, in_flight)
    return {
        "max_concurrent_activities": slots,
        "max_concurrent_workflow_tasks": slots,
        "max_cached_workflows": max(1000, 2 * in_flight),
        "workflow_task_pollers": 8,
        "activity_task_pollers": 8,
        "workflow_sandbox": True,
        "eager_activity_execution": True,
    }


async def _measure(
    binary: Path, duration_s: float, in_flight: int, warmup_s: float, store: str
) -> dict[str, Any]:
    """Start the server and a worker, drive the closed loop, and return the figures."""
    from temporalio.testing import WorkflowEnvironment

    from bench.peers.temporal_workload import OrderSaga

    with tempfile.TemporaryDirectory(prefix="temporal-peer-") as tmp:
        # The SDK gives the dev server 5 s to listen; on a busy 2-core box (right after
        # another benchmark) it sometimes needs longer, so a failed start is tried again.
        for attempt in range(1, 4):
            try:
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=str(binary),
                    ip="127.0.0.1",
                    port=_free_port(),
                    ui=False,
                    dev_server_database_filename=(
                        None if store == "memory" else str(Path(tmp) / f"temporal-{attempt}.sqlite")
                    ),
                    dev_server_log_level="error",
                    dev_server_extra_args=[
                        "--metrics-port",
                        str(_free_port()),
                        "--http-port",
                        str(_free_port()),
                        *STORES[store],
                    ],
                )
                break
            except RuntimeError as exc:
                if attempt == 3 or "did not start" not in str(exc):
                    raise
                print(f"Temporal dev server start {attempt} failed ({exc}); retrying", flush=True)
                await asyncio.sleep(5)
        address = env.client.service_client.config.target_host
        worker = _start_worker(address, in_flight)
        try:
            client = env.client
            await asyncio.wait_for(
                client.execute_workflow(
                    OrderSaga.run, "warm", id="order-warm", task_queue=TASK_QUEUE
                ),
                timeout=READY_TIMEOUT_S,
            )
            servers = child_pids(os.getpid(), "start-dev")
            meter = CpuMeter(
                system={"server": servers[0], "worker": worker.pid}, load={"load": os.getpid()}
            )
            loop_figures = await _closed_loop(client, duration_s, in_flight, warmup_s, meter)
        finally:
            _stop(worker)
            await env.shutdown()
    return {
        "system": "temporal",
        "server": f"temporal CLI {binary.parent.parent.name} start-dev",
        "store": store,
        "in_flight": in_flight,
        "worker": worker_settings(in_flight),
        **loop_figures,
    }


async def _closed_loop(
    client: Any, duration_s: float, in_flight: int, warmup_s: float, meter: CpuMeter
) -> dict[str, Any]:
    """Keep ``in_flight`` sagas running; count those completing in the steady window."""
    from bench.peers.temporal_workload import OrderSaga

    window = SteadyWindow(time.monotonic(), warmup_s, duration_s, in_flight, READY_TIMEOUT_S)
    started = 0

    async def one_lane(lane: int) -> None:
        nonlocal started
        n = 0
        while True:
            saga_start = time.monotonic()
            started += 1
            await client.execute_workflow(
                OrderSaga.run, f"o{lane}-{n}", id=f"order-{lane}-{n}", task_queue=TASK_QUEUE
            )
            window.record(saga_start, time.monotonic())
            n += 1

    lanes = [asyncio.create_task(one_lane(lane)) for lane in range(in_flight)]
    while not window.finished(time.monotonic()):
        await asyncio.sleep(0.1)
        if window.opened_at is not None and not meter.started:
            meter.start()
        failed = [t for t in lanes if t.done() and not t.cancelled() and t.exception()]
        if failed:
            break
    meter.stop()
    # Sagas still running at the end of the window count nothing, and waiting for them
    # would only add the tail's latency to the run's length.
    for lane_task in lanes:
        lane_task.cancel()
    await asyncio.wait(lanes, timeout=DRAIN_TIMEOUT_S)
    failed = [t for t in lanes if t.done() and not t.cancelled() and t.exception()]
    if failed:
        raise RuntimeError("a saga failed during the run") from failed[0].exception()
    figures = window.figures()
    return {
        **figures,
        **meter.figures(figures["completed_in_window"]),
        "started_total": started,
    }


def _start_worker(address: str, in_flight: int) -> subprocess.Popen[bytes]:
    """Run the worker in its own process, as a deployment would, so it has its own GIL."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.peers.temporal_peer",
            "--worker",
            address,
            "--in-flight",
            str(in_flight),
        ],
        env=os.environ.copy(),
        # The figures go to standard output as JSON; keep the worker's words off it.
        stdout=sys.stderr.fileno(),
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End a child process: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def _run_worker(address: str, in_flight: int) -> None:
    """Serve the order saga's workflow and activity tasks until SIGTERM."""
    from temporalio.client import Client
    from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

    from bench.peers.temporal_workload import ACTIVITIES, OrderSaga

    settings = worker_settings(in_flight)
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[OrderSaga],
        activities=ACTIVITIES,
        max_concurrent_activities=settings["max_concurrent_activities"],
        max_concurrent_workflow_tasks=settings["max_concurrent_workflow_tasks"],
        max_cached_workflows=settings["max_cached_workflows"],
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(
            settings["workflow_task_pollers"]
        ),
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(
            settings["activity_task_pollers"]
        ),
        graceful_shutdown_timeout=timedelta(seconds=2),
    )
    async with worker:
        await stop.wait()


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (sagas.devkafka's is not here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> None:
    """Measure Temporal (or, with ``--worker``, serve as its worker) from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=25.0, help="steady window, seconds")
    parser.add_argument("--warmup", type=float, default=8.0, help="warm-up, seconds")
    parser.add_argument("--in-flight", type=int, default=300, help="sagas kept running")
    parser.add_argument("--store", choices=sorted(STORES), default="file", help="server store")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--temporal-binary", help="the built Temporal CLI (default: install)")
    parser.add_argument("--json", action="store_true", help="print only the figures as JSON")
    parser.add_argument("--worker", metavar="HOST:PORT", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.worker:
        asyncio.run(_run_worker(options.worker, options.in_flight))
        return
    if options.quick:
        options.duration, options.warmup = 4.0, 3.0
    figures = run_temporal(
        options.duration,
        options.in_flight,
        options.warmup,
        store=options.store,
        temporal_binary=options.temporal_binary,
    )
    if options.json:
        print(json.dumps(figures))
    else:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
