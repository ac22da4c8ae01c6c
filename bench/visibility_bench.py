"""Visibility at scale: describe, list, status and result with a million workflows held.

    .venv/bin/python -m bench.visibility_bench --workflows 1000000
    .venv/bin/python -m bench.visibility_bench --quick          # 10,000 workflows

The workflows are real states of the processors: their event log is decided by the
saga's plan (:mod:`bench.visibility_log`) and written to a fresh events topic, ``sagas
replay`` folds it into the processor's store, search index and changelog, and a saga
processor started on that store serves the queries. Then, on a local broker: describe,
list (one status and one attribute filter, first page of 100), status and result
latencies; the resident memory of a separate client process at a small and the large
count; completed sagas/s of a closed loop without queries and with 50 queries/s beside
it. Prints the figures against the goals; a full run writes them to
``bench/results/visibility-<date>-<machine>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import LoadGenerator, percentile
from bench.processes import REPO, start_worker, stop
from bench.run import RESULTS, machine
from bench.sagas_bench import cpu_seconds
from bench.visibility_log import (
    CUSTOMERS,
    VERSIONS,
    kind_of,
    order_of,
    workflow_id,
    write_log,
)
from bench.visibility_probe import ended_workflow, selective_search
from bench.visibility_saga import VisOrder, saga
from processors.replay import replay
from processors.runner import provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.devkafka import LocalKafka, kafka_version
from topics.naming import TopicNames
from topics.offset_reset import reset_offsets

SAGA_REF = "bench.visibility_saga:saga"
QUERY_RATE = 50.0


@dataclass(frozen=True)
class Sizes:
    """How much a run holds and asks."""

    workflows: int
    small: int
    describes: int
    lists: int
    statuses: int
    warmup_s: float
    window_s: float
    in_flight: int


@dataclass
class Held:
    """A deployment holding ``workflows`` replayed workflows, its processor serving them."""

    kafka: KafkaSettings
    workflows: int
    build: dict[str, Any]
    workdir: Path
    label: str
    processor_pid: int
    broker_pids: list[int]


def _stamp(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def held(cluster: LocalKafka, workdir: Path, workflows: int, label: str) -> Iterator[Held]:
    """Fresh topics holding ``workflows`` orders, folded by a replay, and a saga
    processor process started on the replayed store."""
    bootstrap = cluster.bootstrap_servers
    prefix = f"vis{label}{int(time.time() * 1000) % 10**9}."
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    provision(VERSIONS, kafka)
    names = TopicNames(VERSIONS.name, prefix)
    began = time.monotonic()
    events = write_log(kafka, workflows)
    written_s = time.monotonic() - began
    _stamp(f"{label}: wrote {events:,} events of {workflows:,} workflows in {written_s:.0f} s")
    # The log stands for what a processor group has handled: it goes on from its end.
    reset_offsets(kafka.client_config(), names.processor_group, names.events, "latest")
    state_dir = workdir / f"{label}-state"
    report = replay(VERSIONS, kafka, state_dir)
    rebuilt = sum(p.workflows for p in report.partitions)
    if rebuilt != workflows:
        raise RuntimeError(f"the replay rebuilt {rebuilt:,} workflows of {workflows:,}")
    _stamp(f"{label}: replayed {report.events:,} events in {report.seconds:.0f} s"
           f" ({report.events_per_second:,.0f}/s)")  # fmt: skip
    began = time.monotonic()
    processor = start_worker(SAGA_REF, "processor", bootstrap, prefix, state_dir,
                             workdir / f"{label}-processor.log",
                             extra=["--no-create-topics"])  # fmt: skip
    try:
        _wait_serving(kafka, processor, timeout_s=120 + workflows / 5000)
        build = {
            "events": events,
            "write_s": written_s,
            "replay_s": report.seconds,
            "replay_events_per_s": report.events_per_second,
            "changelog_records": sum(p.changelog_records for p in report.partitions),
            "processor_ready_s": time.monotonic() - began,
        }
        _stamp(f"{label}: processor serving after {build['processor_ready_s']:.0f} s")
        yield Held(kafka, workflows, build, workdir, label, processor.pid, cluster.node_pids())
    finally:
        stop(processor)


def _wait_serving(kafka: KafkaSettings, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until the processor announces every partition as served."""
    deadline = time.monotonic() + timeout_s
    with SagaClient(kafka) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the processor exited with {process.returncode}")
            endpoints = client.queries.endpoints(saga.name, refresh=True)
            served = set().union(*(e.partitions for e in endpoints)) if endpoints else set()
            if endpoints and served >= set(range(endpoints[0].partition_count)):
                return
            time.sleep(0.5)
    raise RuntimeError(f"the processor did not serve every partition within {timeout_s:.0f} s")


def _timed(calls: int, call: Callable[[int], None]) -> dict[str, float]:
    latencies = []
    for index in range(calls):
        began = time.perf_counter()
        call(index)
        latencies.append((time.perf_counter() - began) * 1000)
    return {
        "samples": calls,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


def queries(run: Held, sizes: Sizes) -> dict[str, Any]:
    """Latencies of describe, list, status and result through one client, each answer
    checked against what the workflow's log holds."""
    rng = random.Random(3)
    n = run.workflows
    with SagaClient(run.kafka) as client:
        client.describe(saga, workflow_id(0))  # reads the endpoints once

        def describe(_: int) -> None:
            k = rng.randrange(n)
            found = client.describe(saga, workflow_id(k))
            want = order_of(k)
            expected = {"customer_id": want.customer_id, "order_total": want.order_total}
            if found["status"] != kind_of(k).value or found["attributes"] != expected:
                raise RuntimeError(f"describe of {workflow_id(k)} answered {found}")

        def listed(index: int, status: str) -> None:
            customer = rng.randrange(CUSTOMERS)
            page = client.list(saga, selective_search(customer, status))
            for item in page.items:
                if item["status"] != status or not str(item["workflow_id"]).startswith("vis-"):
                    raise RuntimeError(f"list of {status} c-{customer} answered {item}")
            if status == "COMPLETED" and len(page.items) < min(100, n // CUSTOMERS // 2):
                raise RuntimeError(f"list of {status} c-{customer}: {len(page.items)} items")

        def status(_: int) -> None:
            k = ended_workflow(rng, n)
            if client.status(saga, workflow_id(k)).status.value != kind_of(k).value:
                raise RuntimeError(f"status of {workflow_id(k)} is not {kind_of(k).value}")

        def result(_: int) -> None:
            k = ended_workflow(rng, n)
            if client.result(saga, workflow_id(k), timeout=10).status.value != kind_of(k).value:
                raise RuntimeError(f"result of {workflow_id(k)} is not {kind_of(k).value}")

        return {
            "client": "one SagaClient for every request",
            "describe": _timed(sizes.describes, describe),
            "list_running": _timed(sizes.lists, lambda i: listed(i, "RUNNING")),
            "list_completed": _timed(sizes.lists, lambda i: listed(i, "COMPLETED")),
            "status": _timed(sizes.statuses, status),
            "result": _timed(sizes.statuses, result),
        }


def _probe(run: Held, *args: str, timeout_s: float = 300) -> dict[str, Any]:
    """Run :mod:`bench.visibility_probe` in its own process; its JSON line."""
    command = [sys.executable, "-m", "bench.visibility_probe", args[0],
               run.kafka.bootstrap_servers, run.kafka.topic_prefix, str(run.workflows),
               *args[1:]]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"the probe failed: {done.stderr.strip().splitlines()[-1:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def client_memory(run: Held) -> dict[str, Any]:
    """The resident memory of a separate client process after describe/list/status/result."""
    return _probe(run, "memory")


def _input(n: int) -> str:
    return VisOrder(
        order_id=f"load-{n}", customer_id="c-load", order_total=n % 1000
    ).model_dump_json()


def _drain(load: LoadGenerator, timeout_s: float) -> None:
    """Until every saga the load started has ended, so the next window starts level."""
    tracking = load.tracking
    deadline = time.monotonic() + timeout_s
    while len(tracking.ended) < len(tracking.intended_ms) and time.monotonic() < deadline:
        load.poll_ends(0.1)


WINDOWS = ("quiet",) + ("asked", "quiet") * 6
"""Windows without and with queries, alternating, each asked window between two quiet
ones: the machine's own drift over the run (the first window after the replay runs while
the store settles; the processor's store compacts now and then) moves both kinds."""


def throughput(run: Held, sizes: Sizes) -> dict[str, Any]:
    """Completed sagas/s of a closed loop in alternating windows: without queries, and
    with a separate client process asking 50/s beside it (four describes to one list).
    The change is :func:`paired_change` of the windows; each kind's mean is kept beside
    it. Each window also records the cores each process used, which says where the
    machine's time went."""
    steps = start_worker(SAGA_REF, "steps", run.kafka.bootstrap_servers, run.kafka.topic_prefix,
                         run.workdir / f"{run.label}-steps-state",
                         run.workdir / f"{run.label}-steps.log")  # fmt: skip
    load = LoadGenerator(run.kafka, saga.name, _input)
    roles = {"processor": [run.processor_pid], "answering": answering_pids(run.processor_pid),
             "steps": [steps.pid], "broker": run.broker_pids,
             "load": [os.getpid()]}  # fmt: skip
    windows: list[dict[str, Any]] = []
    try:
        load.start()
        deadline = time.monotonic() + 90
        while not load.poll_ends(0.1):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no saga completed within 90 s; see {run.workdir}")
        for kind in WINDOWS:
            windows.append(_window(run, sizes, load, roles, asked=kind == "asked"))
            _drain(load, 60)
    finally:
        load.close()
        stop(steps)
    quiet = [w["completed_per_s"] for w in windows if w["kind"] == "quiet"]
    asked = [w["completed_per_s"] for w in windows if w["kind"] == "asked"]
    quiet_rate, asked_rate = sum(quiet) / len(quiet), sum(asked) / len(asked)
    paired = paired_changes(windows)
    return {
        "window_s": sizes.window_s,
        "in_flight": sizes.in_flight,
        "without_queries_per_s": quiet_rate,
        "with_queries_per_s": asked_rate,
        "change": statistics.median(paired) if paired else None,
        "change_of_means": asked_rate / quiet_rate - 1 if quiet_rate else None,
        "paired_changes": paired,
        "windows": windows,
    }


def answering_pids(processor: int) -> list[int]:
    """The processor's query process (its child that answers the requests), if any."""
    found = []
    for task in Path(f"/proc/{processor}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"processors.query_child" in cmdline:
                found.append(int(child))
    return found


def paired_changes(windows: list[dict[str, Any]]) -> list[float]:
    """For each asked window between two quiet ones, its sagas/s against the mean of
    those two, less 1: a comparison that a drift slower than three windows does not move.
    The run's change is their median, which one window caught in a compaction or a
    broker's log roll moves no more than any other."""
    changes = []
    for before, asked, after in zip(windows, windows[1:], windows[2:], strict=False):
        if asked["kind"] != "asked" or before["kind"] != "quiet" or after["kind"] != "quiet":
            continue
        quiet = (before["completed_per_s"] + after["completed_per_s"]) / 2
        if quiet > 0:
            changes.append(asked["completed_per_s"] / quiet - 1)
    return changes


def _window(
    run: Held, sizes: Sizes, load: LoadGenerator, roles: dict[str, list[int]], *, asked: bool
) -> dict[str, Any]:
    """One closed-loop window, with the query load beside it when ``asked``."""

    def closed_loop() -> dict[str, Any]:
        return load.closed_loop(sizes.in_flight, sizes.warmup_s, sizes.window_s)

    if not asked:
        figures, cores = _with_cpu(roles, closed_loop)
        return {"kind": "quiet", "completed_per_s": figures["completed_per_s"], "cores": cores}
    seconds = sizes.warmup_s + sizes.window_s + 2
    prober = subprocess.Popen(
        [sys.executable, "-m", "bench.visibility_probe", "load", run.kafka.bootstrap_servers,
         run.kafka.topic_prefix, str(run.workflows), str(QUERY_RATE), str(seconds)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert prober.stdout is not None
        if prober.stdout.readline().strip() != "ready":
            raise RuntimeError("the query load process did not start")
        figures, cores = _with_cpu({**roles, "queries": [prober.pid]}, closed_loop)
        out, _ = prober.communicate(timeout=seconds + 120)
    finally:
        if prober.poll() is None:
            prober.kill()
            prober.wait()
    if prober.returncode != 0:
        raise RuntimeError("the query load process failed")
    return {
        "kind": "asked",
        "completed_per_s": figures["completed_per_s"],
        "cores": cores,
        "queries": json.loads(out.strip().splitlines()[-1]),
    }


def _with_cpu(
    roles: dict[str, list[int]], window: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, float]]:
    """What ``window`` returns, and the cores each role's processes used meanwhile (CPU
    seconds over wall seconds): where the machine's two cores went in that window."""
    began = time.monotonic()
    spent = {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in roles.items()}
    result = window()
    wall = time.monotonic() - began
    used = {
        role: round((sum(cpu_seconds(pid) for pid in roles[role]) - spent[role]) / wall, 3)
        for role in roles
    }
    return result, used


def report_rows(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The headline rows: measure, this run's figure, goal."""
    n = figures["settings"]["workflows"]
    q = figures.get("queries", {})
    memory = figures.get("client_memory", {})
    flow = figures.get("throughput", {})
    build = figures.get("build", {})

    def ms(entry: dict[str, Any] | None) -> str:
        value = (entry or {}).get("p99_ms")
        return "n/a" if not isinstance(value, (int, float)) else f"{value:,.1f} ms"

    small, large = memory.get("small", {}), memory.get("large", {})
    small_mb, large_mb = small.get("peak_rss_kb"), large.get("peak_rss_kb")
    rss = "n/a"
    if small_mb and large_mb:
        rss = (f"{small_mb / 1024:,.0f} / {large_mb / 1024:,.0f} MB"
               f" (x{large_mb / small_mb:.2f})")  # fmt: skip
    change = flow.get("change")
    rate = "n/a"
    if isinstance(change, (int, float)):
        rate = (f"{flow['without_queries_per_s']:,.0f} / {flow['with_queries_per_s']:,.0f}"
                f" (paired {100 * change:+.1f}%)")  # fmt: skip
    replay_rate = build.get("replay_events_per_s")
    return [
        (f"describe p99, {n:,} held", ms(q.get("describe")), "< 100 ms"),
        ("list RUNNING + customer_id, page of 100, p99", ms(q.get("list_running")), "< 2 s"),
        ("list COMPLETED + customer_id, page of 100, p99", ms(q.get("list_completed")), "< 2 s"),
        ("status() of an ended workflow, p99", ms(q.get("status")), ""),
        ("result() of an ended workflow, p99", ms(q.get("result")), ""),
        (f"client peak RSS, {memory.get('small_workflows', 0):,} / {n:,} held", rss,
         "does not grow"),
        ("sagas/s without / with 50 queries/s", rate, "within 10%"),
        ("replay of the bulk load (events/s)",
         "n/a" if replay_rate is None else f"{replay_rate:,.0f}", ""),
    ]  # fmt: skip


def _sizes(args: argparse.Namespace) -> Sizes:
    if args.quick:
        return Sizes(10_000, 1_000, 200, 20, 50, 2.0, 5.0, args.in_flight)
    return Sizes(args.workflows, 10_000, 1_000, 50, 200, 4.0, 15.0, args.in_flight)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=1_000_000, help="workflows held")
    parser.add_argument("--quick", action="store_true", help="10,000 held, short windows")
    parser.add_argument("--in-flight", type=int, default=1000, help="closed-loop concurrency")
    parser.add_argument("--load-note", default="", help="what else ran, for the results file")
    args = parser.parse_args(argv)
    sizes = _sizes(args)
    began = time.monotonic()
    figures: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "python": platform.python_version(), "kafka": kafka_version()},
        "load": {"note": args.load_note, "loadavg_at_start": os.getloadavg()},
        "settings": {"quick": args.quick, **sizes.__dict__},
    }
    with LocalKafka() as cluster, tempfile.TemporaryDirectory(prefix="sagas-vis-") as tmp:
        workdir = Path(tmp)
        with held(cluster, workdir, sizes.small, "small") as small:
            small_memory = client_memory(small)
        _stamp(f"client memory at {sizes.small:,}: {small_memory}")
        with held(cluster, workdir, sizes.workflows, "large") as large:
            figures["build"] = large.build
            figures["queries"] = queries(large, sizes)
            _stamp("queries measured")
            large_memory = client_memory(large)
            figures["client_memory"] = {
                "small_workflows": sizes.small,
                "small": small_memory,
                "large": large_memory,
                "ratio": large_memory["peak_rss_kb"] / small_memory["peak_rss_kb"],
            }
            figures["throughput"] = throughput(large, sizes)
    figures["load"]["loadavg_at_end"] = os.getloadavg()
    figures["seconds"] = time.monotonic() - began
    for name, value, goal in report_rows(figures):
        print(f"{name:<52}  {value:>26}  {goal}")
    print(f"whole run: {figures['seconds']:.0f} s")
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        # Only the million-workflow run takes the plain name the README cites.
        size = "" if sizes.workflows == 1_000_000 else f"{sizes.workflows}-"
        stamp = f"{figures['when'][:10]}-{figures['machine']['slug']}"
        named = RESULTS / f"visibility-{size}{stamp}.json"
        # A second run on one day and machine is kept beside the first, which the README
        # may cite.
        again = 2
        while named.exists():
            named = RESULTS / f"visibility-{size}{stamp}-{again}.json"
            again += 1
        named.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {named}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
