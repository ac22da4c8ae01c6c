"""The benchmark's headline table: every row with its goal, figures taken from one run."""

from __future__ import annotations

from typing import Any

from bench.results_table import markdown
from bench.run import machine, report_rows


def _figures() -> dict[str, Any]:
    def run(sagas: float, null: float) -> dict[str, Any]:
        return {
            "sagas": {"completed_per_s": sagas, "processor_cpu_ms_per_saga": 1.0,
                      "steps_cpu_ms_per_saga": 0.5},
            "null": {"completed_per_s": null, "processor_cpu_ms_per_saga": 0.2,
                     "worker_cpu_ms_per_saga": 0.1},
        }  # fmt: skip

    return {
        "sagas_per_s": 600.0,
        "null_pipeline_sagas_per_s": 2400.0,
        "ratio_to_null": 0.25,
        "throughput_runs": [run(600.0, 2400.0)],
        "latency_at_30pct": {
            "rate_per_s": 180.0,
            "dispatch_ms": {"p50": 20.0, "p99": 80.0},
            "start_ack_ms": {"p50": 5.0, "p99": 15.0},
            "start_to_end_ms": {"p50": 200.0, "p99": 400.0},
        },
        "null_latency_at_same_rate": {
            "dispatch_ms": {"p50": 10.0, "p99": 40.0},
            "start_to_end_ms": {"p50": 100.0, "p99": 300.0},
        },
        "idle_floor": {"start_to_end_ms": {"p50": 60.0, "p99": 90.0}},
        "client_starts": {"starts_per_s": 10500.0},
        "scale_out": {"1": {"completed_per_s": 600.0}, "2": {"completed_per_s": 700.0}},
        "scale": {
            "10000": {"completed_per_s": 600.0},
            "100000": {"completed_per_s": 540.0, "restore": {"records_per_s": 120000.0}},
        },
        "peers": {"temporal": {"completed_per_s": 20.0}, "faust": {"completed_per_s": 50.0}},
    }


def test_every_headline_row_is_there_with_its_goal() -> None:
    rows = {name.strip(): (value, goal) for name, value, goal in report_rows(_figures())}
    assert rows["x Temporal (20.0/s)"] == ("30.0x", ">= 25x")
    assert rows["x faust-streaming (50.0/s)"] == ("12.0x", "")
    assert rows["saga / null pipeline (2,400/s)"] == ("25.0%", ">= 50%")
    assert rows["step dispatch p50 / p99 at 30% load (180/s)"] == ("20.0 / 80.0 ms", "p99 <= 50 ms")
    assert rows["start -> completed p50 / p99 at 30% load"][1] == "p50 <= 120, p99 <= 250 ms"
    assert rows["one saga at a time, idle (the floor)"] == ("60.0 / 90.0 ms", "")
    assert rows["starts acknowledged/s, one client process"] == ("10,500", ">= 10,000")
    assert rows["sagas/s with 100,000 vs 10,000 in flight"] == ("540 vs 600 (-10.0%)", "within 20%")
    assert rows["changelog restore, 100,000 workflows (records/s)"] == ("120,000", ">= 100K")
    assert rows["sagas/s with 1 vs 2 processor processes"] == ("600 vs 700", "")
    assert rows["CPU per saga, processor (null pipeline)"] == ("1.0 (0.2) ms", "")
    null_rows = [value for name, value, goal in report_rows(_figures()) if goal == "(the limit)"]
    assert null_rows == ["10.0 / 40.0 ms", "100 / 300 ms"]


def test_a_failed_large_run_reports_the_small_runs_restore() -> None:
    figures = _figures()
    figures["scale"]["100000"] = {"error": "RuntimeError: the processor did not catch up"}
    figures["scale"]["10000"]["restore"] = {"records_per_s": 90000.0}
    rows = {name.strip(): (value, goal) for name, value, goal in report_rows(figures)}
    assert rows["changelog restore, 10,000 workflows (records/s)"] == ("90,000", ">= 100K")
    assert rows["sagas/s with 100,000 vs 10,000 in flight"][0] == "n/a vs 600 (n/a)"


def test_a_missing_measurement_reads_n_a_instead_of_failing() -> None:
    rows = report_rows({"latency_at_30pct": {"error": "RuntimeError: no saga completed"}})
    values = {name: value for name, value, _ in rows}
    assert values["start acknowledged p50 / p99"] == "n/a / n/a ms"
    assert values["completed 4-step sagas/s"] == "n/a"


def test_the_machine_is_named_by_cores_and_memory() -> None:
    found = machine()
    assert found["cpus"] >= 1
    assert found["memory_bytes"] > 0
    assert found["slug"].startswith(f"{found['cpus']}cpu-")


def test_the_readme_table_has_a_row_per_headline_figure() -> None:
    lines = markdown(_figures()).splitlines()
    assert lines[:2] == ["| measure | this run | goal |", "|---|---|---|"]
    assert "| saga / null pipeline (2,400/s) | 25.0% | >= 50% |" in lines
    assert len(lines) == 2 + len(report_rows(_figures()))
