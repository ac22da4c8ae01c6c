"""Every benchmark in one run: kafka-sagas, the null pipeline, and the peers, side by side.

    scripts/bench            # the full run (several minutes; peers built on first use)
    scripts/bench --quick    # a short smoke of every part

Prints a table and writes the figures to ``bench/results/latest.json``. Ratios are taken
within the run, from medians of ``--repeats`` measurements: these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import null_pipeline
from bench.processes import REPO
from bench.sagas_bench import latency, scale, throughput
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
        return null_pipeline.closed_loop(bootstrap, prefix, in_flight, warmup_s, measure_s)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, small scale")
    parser.add_argument("--repeats", type=int, default=None, help="measurements per figure")
    parser.add_argument("--in-flight", type=int, default=2000, help="closed-loop concurrency")
    parser.add_argument(
        "--large", type=int, default=None, help="workflows held for the large scale run (1M)"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip Temporal and faust")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    warmup, window = (2.0, 5.0) if quick else (5.0, 20.0)
    small, large = (1_000, 10_000) if quick else (10_000, args.large or 1_000_000)

    figures: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": _cpus(), "python": platform.python_version(), "kafka": kafka_version()},
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
    _report(figures)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(figures, indent=2))
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


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _report(figures: dict[str, Any]) -> None:
    """Print the headline table against the goals."""
    saga_rate = figures.get("sagas_per_s")
    lat = figures.get("latency_at_30pct", {})
    scale_runs = figures.get("scale", {})
    peers = figures.get("peers", {})
    temporal = peers.get("temporal", {}).get("completed_per_s")
    faust = peers.get("faust", {}).get("completed_per_s")

    def num(value: Any, unit: str = "") -> str:
        return f"{value:,.1f}{unit}" if isinstance(value, (int, float)) else "n/a"

    rows = [
        ("completed 4-step sagas/s", num(saga_rate), ">= 2,000"),
        (
            "x Temporal (same box, same run)",
            num(saga_rate / temporal if saga_rate and temporal else None, "x"),
            ">= 25x",
        ),
        ("x faust-streaming", num(saga_rate / faust if saga_rate and faust else None, "x"), ""),
        (
            "saga / null pipeline",
            num(100 * figures["ratio_to_null"] if figures.get("ratio_to_null") else None, "%"),
            ">= 50%",
        ),
        (
            "step dispatch p99 at 30% load",
            num(lat.get("dispatch_ms", {}).get("p99"), " ms"),
            "<= 50 ms",
        ),
        ("start acknowledged p99", num(lat.get("start_ack_ms", {}).get("p99"), " ms"), "<= 20 ms"),
        (
            "start -> completed p99 at 30%",
            num(lat.get("start_to_end_ms", {}).get("p99"), " ms"),
            "<= 250 ms",
        ),
    ]
    sizes = sorted(scale_runs, key=int)
    for size in sizes:
        run = scale_runs[size]
        rows.append((f"sagas/s with {int(size):,} in flight", num(run.get("completed_per_s")), ""))
        rows.append(
            (
                f"  RSS bytes per workflow ({int(size):,})",
                num(run.get("rss_bytes_per_holding_workflow")),
                "",
            )
        )
    if len(sizes) == 2:
        small, large = (scale_runs[s].get("completed_per_s") for s in sizes)
        drop = 100 * (1 - large / small) if small and large else None
        rows.append(("throughput drop, large vs small", num(drop, "%"), "<= 20%"))
        restore = scale_runs[sizes[-1]].get("restore", {}).get("records_per_s")
        rows.append(("changelog restore (records/s)", num(restore), ">= 100,000"))
    rows.append(("Temporal sagas/s", num(temporal), ""))
    rows.append(("faust-streaming sagas/s", num(faust), ""))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'measure':<{width}}  {'this run':>14}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>14}  {goal}")


if __name__ == "__main__":
    sys.exit(main())
