"""Every benchmark in one run: kafka-sagas, the null pipeline, and the peers, side by side.

    scripts/bench            # the full run (several minutes; peers built on first use)
    scripts/bench --quick    # a short smoke of every part

Prints a table against the goals and writes the figures to ``bench/results/latest.json``
and, for a full run, ``bench/results/<date>-<machine>.json``. Ratios are taken
within the run, from medians of ``--repeats`` measurements: these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench import null_pipeline
from bench.processes import REPO
from bench.sagas_bench import (
    client_starts,
    cpu_seconds,
    idle_floor,
    latency,
    scale,
    scale_out,
    throughput,
)
from sagas.devkafka import LocalKafka, kafka_version

RESULTS = REPO / "bench" / "results"


def null_throughput(
    bootstrap: str, in_flight: int, warmup_s: float, measure_s: float
) -> dict[str, Any]:
    """The null pipeline's completed sagas/s, in processes laid out as kafka-sagas' are."""
    prefix = f"null{int(time.time() * 1000) % 10**9}."
    null_pipeline.create_topics(bootstrap, prefix)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.null_pipeline", role, bootstrap, prefix], cwd=REPO
        )
        for role in ("processor", "worker")
    ]
    try:
        before = [cpu_seconds(p.pid) for p in processes]
        result = null_pipeline.closed_loop(bootstrap, prefix, in_flight, warmup_s, measure_s)
        done = max(result["completed_total"], 1)
        for role, process, spent in zip(("processor", "worker"), processes, before, strict=True):
            result[f"{role}_cpu_ms_per_saga"] = (cpu_seconds(process.pid) - spent) * 1000 / done
        return result
    finally:
        for process in processes:
            process.kill()
            process.wait()


def _attempt(name: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one measurement; a failure is reported in the results instead of ending the run."""
    print(f"== {name}", flush=True)
    try:
        figures = measure()
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(figures), flush=True)
    return figures


def null_latency(bootstrap: str, rate: float, duration_s: float) -> dict[str, Any]:
    """The null pipeline's dispatch and start-to-completed latencies at ``rate`` sagas/s."""
    prefix = f"nulllat{int(time.time() * 1000) % 10**9}."
    null_pipeline.create_topics(bootstrap, prefix)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.null_pipeline", role, bootstrap, prefix], cwd=REPO
        )
        for role in ("processor", "worker")
    ]
    try:
        # A few sagas first, so both processes have joined their groups.
        null_pipeline.closed_loop(bootstrap, prefix, 10, 3.0, 1.0)
        return null_pipeline.open_loop(bootstrap, prefix, rate, duration_s)
    finally:
        for process in processes:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, small scale")
    parser.add_argument("--repeats", type=int, default=None, help="measurements per figure")
    parser.add_argument("--in-flight", type=int, default=2000, help="closed-loop concurrency")
    parser.add_argument(
        "--large", type=int, default=None, help="workflows held for the large scale run (100k)"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip Temporal and faust")
    parser.add_argument(
        "--load-note", default="", help="what else ran on the machine, for the results file"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    warmup, window = (2.0, 5.0) if quick else (5.0, 20.0)
    small, large = (1_000, 10_000) if quick else (10_000, args.large or 100_000)

    figures: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "python": platform.python_version(), "kafka": kafka_version()},
        "load": {"note": args.load_note, "loadavg_at_start": os.getloadavg()},
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "in_flight": args.in_flight,
            "warmup_s": warmup,
            "window_s": window,
        },
    }
    with LocalKafka() as cluster, tempfile.TemporaryDirectory(prefix="sagas-bench-") as tmp:
        bootstrap, workdir = cluster.bootstrap_servers, Path(tmp)
        runs = []
        for index in range(repeats):
            label = f"{index + 1}/{repeats}"
            sagas = _attempt(
                f"kafka-sagas throughput {label}",
                lambda: throughput(bootstrap, workdir, args.in_flight, warmup, window),
            )
            null = _attempt(
                f"null pipeline throughput {label}",
                lambda: null_throughput(bootstrap, args.in_flight, warmup, window),
            )
            runs.append({"sagas": sagas, "null": null})
        figures["throughput_runs"] = runs
        saga_rate = _median(r["sagas"].get("completed_per_s") for r in runs)
        null_rate = _median(r["null"].get("completed_per_s") for r in runs)
        figures["sagas_per_s"] = saga_rate
        figures["null_pipeline_sagas_per_s"] = null_rate
        figures["ratio_to_null"] = saga_rate / null_rate if saga_rate and null_rate else None
        rate = 0.3 * saga_rate if saga_rate else 100.0
        figures["latency_at_30pct"] = _attempt(
            f"latency at {rate:.0f} sagas/s", lambda: latency(bootstrap, workdir, rate, window * 2)
        )
        figures["null_latency_at_same_rate"] = _attempt(
            f"null pipeline latency at {rate:.0f} sagas/s",
            lambda: null_latency(bootstrap, rate, window * 2),
        )
        figures["idle_floor"] = _attempt(
            "one saga at a time, idle", lambda: idle_floor(bootstrap, workdir, 10 if quick else 50)
        )
        figures["client_starts"] = _attempt(
            "starts from one client process", lambda: client_starts(bootstrap, window / 2)
        )
        figures["scale_out"] = {
            str(n): _attempt(
                f"{n} processor process(es)",
                lambda n=n: scale_out(bootstrap, workdir, n, args.in_flight, warmup, window),
            )
            for n in (1, 2)
        }
        figures["scale"] = {
            str(n): _attempt(
                f"scale: {n:,} workflows in flight",
                lambda n=n: scale(bootstrap, workdir, n, args.in_flight, warmup, window),
            )
            for n in (small, large)
        }
        if not args.no_peers:
            # The peers saturate far below kafka-sagas' concurrency, and Temporal's warm-up
            # grows with it: 200 in flight keeps them saturated and their runs short.
            figures["peers"] = _peers(bootstrap, warmup, window, min(args.in_flight, 200))
    figures["load"]["loadavg_at_end"] = os.getloadavg()
    _report(figures)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2)
    (RESULTS / "latest.json").write_text(text)
    if not quick:
        named = RESULTS / f"{figures['when'][:10]}-{figures['machine']['slug']}.json"
        named.write_text(text)
        print(f"figures written to {named}")
    print(f"figures written to {RESULTS / 'latest.json'}")
    return 0


def _peers(bootstrap: str, warmup: float, window: float, in_flight: int) -> dict[str, Any]:
    from bench.peers.faust_peer import run_faust
    from bench.peers.temporal_peer import run_temporal

    return {
        "temporal": _attempt("Temporal", lambda: run_temporal(window, in_flight, warmup)),
        "faust": _attempt(
            "faust-streaming", lambda: run_faust(bootstrap, window, in_flight, warmup)
        ),
    }


def _median(values: Any) -> float | None:
    present = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(present) if present else None


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, memory, CPU model, and a name for the file."""
    cpus = os.cpu_count() or 0
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    words = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*", "", model.lower()).split()
    brand = "-".join(re.sub(r"[^a-z0-9]", "", w) for w in words[:4] if w)
    slug = f"{cpus}cpu-{round(memory / 2**30)}g" + (f"-{brand}" if brand else "")
    return {"cpus": cpus, "memory_bytes": memory, "cpu_model": model, "slug": slug}


def _report(figures: dict[str, Any]) -> None:
    """Print the headline table against the goals."""
    for name, value, goal in report_rows(figures):
        print(f"{name:<48}  {value:>22}  {goal}")


def report_rows(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The headline rows: measure, this run's figure, goal."""
    saga_rate = figures.get("sagas_per_s")
    lat = figures.get("latency_at_30pct", {})
    null_lat = figures.get("null_latency_at_same_rate", {})
    floor = figures.get("idle_floor", {})
    scale_runs = figures.get("scale", {})
    out = figures.get("scale_out", {})
    peers = figures.get("peers", {})
    temporal = peers.get("temporal", {}).get("completed_per_s")
    faust = peers.get("faust", {}).get("completed_per_s")

    def num(value: Any, unit: str = "") -> str:
        if not isinstance(value, (int, float)) or value != value:
            return "n/a"
        return f"{value:,.0f}{unit}" if abs(value) >= 100 else f"{value:,.1f}{unit}"

    def pair(figure: dict[str, Any]) -> str:
        return f"{num(figure.get('p50'))} / {num(figure.get('p99'))} ms"

    def ratio(a: Any, b: Any) -> Any:
        return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

    rows = [
        ("completed 4-step sagas/s", num(saga_rate), ""),
        (f"x Temporal ({num(temporal)}/s)", num(ratio(saga_rate, temporal), "x"), ">= 25x"),
        (f"x faust-streaming ({num(faust)}/s)", num(ratio(saga_rate, faust), "x"), ""),
        (
            f"saga / null pipeline ({num(figures.get('null_pipeline_sagas_per_s'))}/s)",
            num(100 * figures["ratio_to_null"] if figures.get("ratio_to_null") else None, "%"),
            ">= 50%",
        ),
        (
            f"step dispatch p50 / p99 at 30% load ({num(lat.get('rate_per_s'))}/s)",
            pair(lat.get("dispatch_ms", {})),
            "p99 <= 50 ms",
        ),
        ("  null pipeline, same rate", pair(null_lat.get("dispatch_ms", {})), "(the limit)"),
        ("start acknowledged p50 / p99", pair(lat.get("start_ack_ms", {})), "p99 <= 20 ms"),
        (
            "start -> completed p50 / p99 at 30% load",
            pair(lat.get("start_to_end_ms", {})),
            "p50 <= 120, p99 <= 250 ms",
        ),
        ("  null pipeline, same rate", pair(null_lat.get("start_to_end_ms", {})), "(the limit)"),
        ("  one saga at a time, idle (the floor)", pair(floor.get("start_to_end_ms", {})), ""),
        (
            "sagas/s with 1 vs 2 processor processes",
            f"{num(out.get('1', {}).get('completed_per_s'))} vs "
            f"{num(out.get('2', {}).get('completed_per_s'))}",
            "",
        ),
        (
            "starts acknowledged/s, one client process",
            num(figures.get("client_starts", {}).get("starts_per_s")),
            ">= 10,000",
        ),
    ]
    sizes = sorted(scale_runs, key=int)
    if len(sizes) == 2:
        small, large = (scale_runs[s].get("completed_per_s") for s in sizes)
        drop = 100 * (1 - large / small) if small and large else None
        rows.append(
            (
                f"sagas/s with {int(sizes[1]):,} vs {int(sizes[0]):,} in flight",
                f"{num(large)} vs {num(small)} ({num(-drop if drop is not None else None, '%')})",
                "within 20%",
            )
        )
    restored = [s for s in sizes if scale_runs[s].get("restore", {}).get("records_per_s")]
    if restored:
        # The largest run's restore; should that run have failed, the next one's.
        size = restored[-1]
        restore = scale_runs[size]["restore"]["records_per_s"]
        rows.append(
            (f"changelog restore, {int(size):,} workflows (records/s)", num(restore), ">= 100K")
        )
    elif sizes:
        rows.append(("changelog restore (records/s)", "n/a", ">= 100K"))
    runs = figures.get("throughput_runs", [])
    for name, null_name in (("processor", "processor"), ("steps", "worker")):
        cpu = _median(r["sagas"].get(f"{name}_cpu_ms_per_saga") for r in runs)
        null_cpu = _median(r["null"].get(f"{null_name}_cpu_ms_per_saga") for r in runs)
        rows.append(
            (f"CPU per saga, {name} (null pipeline)", f"{num(cpu)} ({num(null_cpu)}) ms", "")
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
