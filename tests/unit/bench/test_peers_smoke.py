"""The peers' figures and entry points, checked without installing Temporal or faust."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.peers.figures import (
    CpuMeter,
    SteadyWindow,
    child_pids,
    listening_pid,
    percentile_ms,
    process_cpu_s,
    window_figures,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_window_figures_count_only_the_window_and_rank_latencies() -> None:
    latencies = [0.010 * n for n in range(1, 101)]  # 10 ms .. 1000 ms, shuffled below
    shuffled = latencies[50:] + latencies[:50]

    figures = window_figures(shuffled, window_s=4.0)

    assert figures["completed_in_window"] == 100
    assert figures["completed_per_s"] == 25.0
    assert figures["start_to_end_ms"] == {"p50": 500.0, "p99": 990.0}


def test_percentile_is_nearest_rank_and_none_without_data() -> None:
    assert percentile_ms([0.001, 0.002, 0.003], 0.5) == 2.0
    assert percentile_ms([0.001, 0.002, 0.003], 1.0) == 3.0
    assert percentile_ms([], 0.99) is None


@pytest.mark.parametrize("q", [0.0, 1.5])
def test_percentile_rejects_a_quantile_outside_zero_one(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        percentile_ms([0.1], q)


def test_window_figures_reject_an_empty_window() -> None:
    with pytest.raises(ValueError, match="window"):
        window_figures([0.1], window_s=0)


def test_steady_window_opens_after_the_warmup_and_a_completion_per_lane() -> None:
    window = SteadyWindow(began=100.0, warmup_s=5.0, duration_s=10.0, in_flight=3, max_warmup_s=60)
    window.record(started_at=100.0, done_at=102.0)
    window.record(started_at=100.0, done_at=103.0)
    window.record(started_at=100.0, done_at=104.0)  # every lane cycled, but inside warmup_s
    window.record(started_at=102.0, done_at=106.0)  # opens the window at 106
    window.record(started_at=104.0, done_at=107.0)
    window.record(started_at=106.0, done_at=116.0)
    window.record(started_at=110.0, done_at=116.5)  # after 106 + 10: outside

    assert not window.finished(115.9)
    assert window.finished(116.0)
    figures = window.figures()
    assert figures["warmup_s"] == 6.0
    assert figures["completed_in_window"] == 2
    assert figures["completed_per_s"] == 0.2
    assert figures["start_to_end_ms"] == {"p50": 3000.0, "p99": 10000.0}
    assert figures["completed_total"] == 7


def test_steady_window_waits_for_every_lane_then_gives_up_at_max_warmup() -> None:
    window = SteadyWindow(began=0.0, warmup_s=1.0, duration_s=5.0, in_flight=100, max_warmup_s=30)
    window.record(started_at=0.0, done_at=20.0)  # one lane of 100: still warming up
    assert window.opened_at is None
    assert not window.finished(34.9)
    assert window.finished(35.0)  # no steady state within 30 s + the window
    assert window.figures()["warmup_s"] is None

    window.record(started_at=0.0, done_at=31.0)  # past max_warmup_s: open anyway
    assert window.opened_at == 31.0


def test_steady_window_rejects_a_window_it_cannot_measure() -> None:
    with pytest.raises(ValueError, match="in_flight > 0"):
        SteadyWindow(began=0.0, warmup_s=1.0, duration_s=5.0, in_flight=0, max_warmup_s=30)


def test_cpu_meter_charges_the_window_per_saga_and_keeps_the_load_apart() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen(["sleep", "60"])
    try:
        meter = CpuMeter(system={"busy": busy.pid}, load={"idle": idle.pid})
        meter.start()
        deadline = time.monotonic() + 10
        while process_cpu_s(busy.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        meter.stop()
        figures = meter.figures(completed=10)["cpu_ms_per_saga"]
    finally:
        busy.kill()
        idle.kill()
        busy.wait()
        idle.wait()

    assert figures["busy"] >= 20  # at least 0.2 s of CPU over 10 sagas
    assert figures["idle"] < 5
    assert figures["system_total"] == figures["busy"]


def test_cpu_meter_has_no_figure_without_a_window_or_a_completion() -> None:
    meter = CpuMeter(system={"self": os.getpid()}, load={})
    assert meter.figures(completed=5) == {"cpu_ms_per_saga": None}
    meter.start()
    meter.stop()
    assert meter.figures(completed=0) == {"cpu_ms_per_saga": None}


def test_child_pids_finds_a_direct_child_by_its_command_line() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # marker-42"])
    try:
        deadline = time.monotonic() + 10
        while child.pid not in child_pids(os.getpid(), "marker-42"):
            assert time.monotonic() < deadline, "the child never showed up in /proc"
            time.sleep(0.05)
        assert child_pids(os.getpid(), "no-such-marker") == []
    finally:
        child.kill()
        child.wait()


def test_listening_pid_names_the_process_behind_a_local_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert listening_pid(port) is None  # bound, not listening yet
        server.listen()

        assert listening_pid(port) == os.getpid()


def test_entry_points_import_in_the_projects_env_without_the_peers() -> None:
    # The harness imports run_temporal and run_faust from the project's interpreter, where
    # temporalio and faust are not installed: importing them must not need either.
    code = (
        "import sys, inspect\n"
        "from bench.peers.temporal_peer import run_temporal\n"
        "from bench.peers.faust_peer import run_faust\n"
        "from bench.peers.install import ensure_peers\n"
        "assert 'temporalio' not in sys.modules and 'faust' not in sys.modules\n"
        "print(inspect.signature(run_temporal)); print(inspect.signature(run_faust))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    temporal_signature, faust_signature = result.stdout.splitlines()
    assert "duration_s: 'float'" in temporal_signature
    assert "in_flight: 'int'" in temporal_signature
    assert faust_signature.startswith("(bootstrap: 'str'")
