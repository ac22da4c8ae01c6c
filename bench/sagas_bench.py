"""kafka-sagas under load: throughput at saturation and latency at a fraction of it."""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.bench_saga import BenchOrder, saga
from bench.load import LoadGenerator
from bench.processes import start_worker, stop
from processors.runner import provision
from sagas.config import KafkaSettings
from sagas.devkafka import free_port
from sagas.versions import compile_versions

SAGA_REF = "bench.bench_saga:saga"


def _input(n: int) -> str:
    return BenchOrder(order_id=str(n), amount_cents=1000 + n % 100).model_dump_json()


@contextmanager
def running_saga(
    bootstrap: str, workdir: Path, label: str
) -> Iterator[tuple[LoadGenerator, int, dict[str, int]]]:
    """Fresh topics, a processor and a step worker process, and a load generator."""
    prefix = f"bench{int(time.time() * 1000) % 10**9}."
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    provision(compile_versions(saga), kafka)
    metrics_port = free_port()
    processor = start_worker(SAGA_REF, "processor", bootstrap, prefix, workdir / "state",
                             workdir / f"{label}-processor.log")  # fmt: skip
    worker = start_worker(SAGA_REF, "steps", bootstrap, prefix, workdir / "state",
                          workdir / f"{label}-steps.log", metrics_port=metrics_port)  # fmt: skip
    load = LoadGenerator(kafka, saga.name, _input)
    try:
        # Warm both processes up until a saga goes through end to end.
        load.start()
        deadline = time.monotonic() + 60
        while not load.poll_ends(0.1):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no saga completed within 60 s; see logs in {workdir}")
        yield load, metrics_port, {"processor": processor.pid, "steps": worker.pid}
    finally:
        load.close()
        stop(worker)
        stop(processor)


def throughput(
    bootstrap: str, workdir: Path, in_flight: int, warmup_s: float, measure_s: float
) -> dict[str, Any]:
    """Completed 4-step sagas/s at saturation (closed loop)."""
    with running_saga(bootstrap, workdir, "throughput") as (load, _, pids):
        before = {role: cpu_seconds(pid) for role, pid in pids.items()}
        result = load.closed_loop(in_flight, warmup_s, measure_s)
        done = max(result["completed_total"], 1)
        for role, pid in pids.items():
            result[f"{role}_cpu_ms_per_saga"] = (cpu_seconds(pid) - before[role]) * 1000 / done
        return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used: a cost that other load cannot inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def latency(bootstrap: str, workdir: Path, rate: float, duration_s: float) -> dict[str, Any]:
    """Start-ack, dispatch and start-to-end latencies at a fixed arrival rate (open loop)."""
    with running_saga(bootstrap, workdir, "latency") as (load, metrics_port, _):
        before = _dispatch_histogram(metrics_port)
        result = load.open_loop(rate, duration_s)
        after = _dispatch_histogram(metrics_port)
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    result["dispatch_ms"] = {
        "p50": _histogram_quantile(delta, 0.5) * 1000,
        "p99": _histogram_quantile(delta, 0.99) * 1000,
    }
    return result


def _dispatch_histogram(port: int) -> dict[float, float]:
    """Cumulative bucket counts of ``sagas_dispatch_latency_seconds`` (all labels summed)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("sagas_dispatch_latency_seconds_bucket{"):
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def _histogram_quantile(buckets: dict[float, float], q: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding q."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return float("nan")
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


if __name__ == "__main__":
    import sys

    from sagas.devkafka import LocalKafka

    with LocalKafka() as cluster, tempfile.TemporaryDirectory() as tmp:
        figures = throughput(
            cluster.bootstrap_servers,
            Path(tmp),
            int(sys.argv[1]) if len(sys.argv) > 1 else 300,
            5,
            15,
        )
        print(json.dumps(figures))
