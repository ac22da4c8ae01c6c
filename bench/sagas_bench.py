"""kafka-sagas under load: throughput at saturation, latency at a fraction of it, and scale."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_saga import BenchOrder, saga, versions
from bench.load import LoadGenerator, percentile
from bench.processes import start_worker, stop
from processors.runner import provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.devkafka import free_port
from sagas.engine.versions import compile_versions
from topics.lag import consumer_lag
from topics.naming import TopicNames

SAGA_REF = "bench.bench_saga:versions"
HOLDING_VERSION = 1


def _input(n: int) -> str:
    return BenchOrder(order_id=str(n), amount_cents=1000 + n % 100).model_dump_json()


@dataclass
class Running:
    """A deployed bench saga: its load generator and worker processes."""

    load: LoadGenerator
    kafka: KafkaSettings
    metrics_port: int
    state_dir: Path
    processor_log: Path
    processor: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]

    @property
    def pids(self) -> dict[str, int]:
        """The pid of each measured process, by role."""
        return {"processor": self.processor.pid, "steps": self.worker.pid}


@contextmanager
def running_saga(
    bootstrap: str, workdir: Path, label: str, processors: int = 1
) -> Iterator[Running]:
    """Fresh topics, ``processors`` saga processor processes, a step worker process, and a
    load generator."""
    prefix = f"bench{int(time.time() * 1000) % 10**9}."
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    provision(compile_versions(versions), kafka)
    metrics_port = free_port()
    state_dir = workdir / f"{label}-state"
    processor_log = workdir / f"{label}-processor.log"
    extra = [
        start_worker(SAGA_REF, "processor", bootstrap, prefix, workdir / f"{label}-state{n}",
                     workdir / f"{label}-processor{n}.log", instance=f"bench-processor{n}")
        for n in range(1, processors)
    ]  # fmt: skip
    processor = start_worker(SAGA_REF, "processor", bootstrap, prefix, state_dir, processor_log)
    worker = start_worker(SAGA_REF, "steps", bootstrap, prefix, state_dir,
                          workdir / f"{label}-steps.log", metrics_port=metrics_port)  # fmt: skip
    load = LoadGenerator(kafka, saga.name, _input)
    try:
        # Warm both processes up until a saga goes through end to end.
        load.start()
        deadline = time.monotonic() + 90
        while not load.poll_ends(0.1):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no saga completed within 90 s; see logs in {workdir}")
        yield Running(load, kafka, metrics_port, state_dir, processor_log, processor, worker)
    finally:
        load.close()
        stop(worker)
        stop(processor)
        for other in extra:
            stop(other)


def throughput(
    bootstrap: str, workdir: Path, in_flight: int, warmup_s: float, measure_s: float
) -> dict[str, Any]:
    """Completed 4-step sagas/s at saturation (closed loop), with CPU per saga per process."""
    with running_saga(bootstrap, workdir, "throughput") as run:
        return _closed_loop_with_cpu(run, in_flight, warmup_s, measure_s)


def _closed_loop_with_cpu(
    run: Running, in_flight: int, warmup_s: float, measure_s: float
) -> dict[str, Any]:
    before = {role: cpu_seconds(pid) for role, pid in run.pids.items()}
    result = run.load.closed_loop(in_flight, warmup_s, measure_s)
    done = max(result["completed_total"], 1)
    for role, pid in run.pids.items():
        result[f"{role}_cpu_ms_per_saga"] = (cpu_seconds(pid) - before[role]) * 1000 / done
    return result


def scale_out(
    bootstrap: str,
    workdir: Path,
    processors: int,
    in_flight: int,
    warmup_s: float,
    measure_s: float,
) -> dict[str, Any]:
    """Completed sagas/s with ``processors`` saga processor processes sharing the partitions."""
    with running_saga(bootstrap, workdir, f"out{processors}", processors) as run:
        result = run.load.closed_loop(in_flight, warmup_s, measure_s)
    result["processors"] = processors
    return result


def idle_floor(bootstrap: str, workdir: Path, sagas: int) -> dict[str, Any]:
    """Start to completed of one saga at a time on an otherwise idle deployment."""
    with running_saga(bootstrap, workdir, "floor") as run:
        latencies = []
        for _ in range(sagas):
            began = time.monotonic()
            wid = run.load.start()
            deadline = began + 30
            while wid not in run.load.tracking.ended and time.monotonic() < deadline:
                run.load.poll_ends(0.001)
            latencies.append((time.monotonic() - began) * 1000)
    return {
        "sagas": sagas,
        "start_to_end_ms": {
            "min": min(latencies),
            "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99),
        },
    }


def client_starts(bootstrap: str, seconds: float) -> dict[str, Any]:
    """Starts one client process gets acknowledged per second: ``start(wait=False)`` in a
    loop, then ``flush()``, timed to the last acknowledgement."""
    prefix = f"starts{int(time.time() * 1000) % 10**9}."
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    provision(compile_versions(versions), kafka)
    with SagaClient(kafka) as client:
        client.start(saga, BenchOrder(order_id="warm", amount_cents=1))  # metadata, limits
        began = time.monotonic()
        sent = 0
        while time.monotonic() - began < seconds:
            for _ in range(100):
                client.start(saga, BenchOrder(order_id=str(sent), amount_cents=1000), wait=False)
                sent += 1
        client.flush()
        elapsed = time.monotonic() - began
    return {"starts": sent, "seconds": elapsed, "starts_per_s": sent / elapsed}


def latency(bootstrap: str, workdir: Path, rate: float, duration_s: float) -> dict[str, Any]:
    """Start-ack, dispatch and start-to-end latencies at a fixed arrival rate (open loop)."""
    with running_saga(bootstrap, workdir, "latency") as run:
        before = _dispatch_histogram(run.metrics_port)
        result = run.load.open_loop(rate, duration_s)
        after = _dispatch_histogram(run.metrics_port)
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    result["dispatch_ms"] = {
        "p50": _histogram_quantile(delta, 0.5) * 1000,
        "p99": _histogram_quantile(delta, 0.99) * 1000,
    }
    return result


def scale(
    bootstrap: str, workdir: Path, holding: int, in_flight: int, warmup_s: float, measure_s: float
) -> dict[str, Any]:
    """Throughput with ``holding`` workflows asleep in the store, their memory and restore."""
    label = f"scale{holding}"
    with running_saga(bootstrap, workdir, label) as run:
        began = time.monotonic()
        rss_before = rss_bytes(run.pids["processor"])
        for _ in range(holding):
            run.load.start(version=HOLDING_VERSION)
        run.load.flush()
        _wait_caught_up(run, timeout_s=max(120.0, holding / 500))
        fill_s = time.monotonic() - began
        rss_after = rss_bytes(run.pids["processor"])
        result = _closed_loop_with_cpu(run, in_flight, warmup_s, measure_s)
        disk = sum(f.stat().st_size for f in run.state_dir.rglob("*") if f.is_file())
        result.update(
            holding=holding,
            fill_s=fill_s,
            processor_rss_mb=rss_after / 2**20,
            rss_bytes_per_holding_workflow=(rss_after - rss_before) / holding,
            state_disk_bytes_per_workflow=disk / holding,
        )
        # A restart with an empty state directory restores every state from the changelog.
        # The processor stops first: one started beside it under the same instance id
        # would fence it, and each would start over and fence the other in turn.
        stop(run.processor)
        restore_log = workdir / f"{label}-restore.log"
        restarted = start_worker(SAGA_REF, "processor", bootstrap, run.kafka.topic_prefix,
                                 workdir / f"{label}-restore-state", restore_log,
                                 extra=["--no-create-topics"])  # fmt: skip
        try:
            result["restore"] = _wait_restored(restore_log, timeout_s=max(120.0, holding / 2000))
        finally:
            stop(restarted)
    return result


def _wait_caught_up(run: Running, timeout_s: float) -> None:
    names = TopicNames(saga.name, run.kafka.topic_prefix)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lags = consumer_lag(run.kafka.client_config(), names.processor_group, [names.events])
        if sum(lag.lag for lag in lags) == 0:
            return
        run.load.poll_ends(0.5)
    raise RuntimeError(f"the processor did not catch up within {timeout_s:.0f} s")


_RESTORED = re.compile(
    r"restored \S+\[\d+\] from offset \d+ to \d+: (\d+) record\(s\) in ([\d.]+)s"
)


def _wait_restored(log: Path, timeout_s: float) -> dict[str, Any]:
    """Records and seconds of the changelog restore a fresh processor logs on assignment."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = _RESTORED.findall(text)
        if len(found) >= 3 and "ready: partitions assigned" in text:
            records = sum(int(r) for r, _ in found)
            seconds = sum(float(s) for _, s in found)
            return {"records": records, "seconds": seconds, "records_per_s": records / seconds}
        time.sleep(0.5)
    raise RuntimeError(f"no complete restore logged in {log} within {timeout_s:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used: a cost that other load cannot inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_bytes(pid: int) -> int:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _dispatch_histogram(port: int) -> dict[float, float]:
    """Cumulative bucket counts of ``sagas_step_dispatch_seconds`` (all labels summed)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("sagas_step_dispatch_seconds_bucket{"):
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
