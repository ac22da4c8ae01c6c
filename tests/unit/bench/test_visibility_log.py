"""The visibility benchmark's synthesized log: each workflow folds to the kind it is
counted as, and the selective lists it times have workflows to find."""

from __future__ import annotations

from collections import Counter

from bench.visibility_bench import paired_changes, report_rows
from bench.visibility_log import CUSTOMERS, VERSIONS, Kind, customer_of, kind_of, workflow_events


def test_each_workflow_folds_to_its_kind_with_its_attributes() -> None:
    plan = VERSIONS.newest
    for n in (0, 1, 2, 21, 37, 137, 1001):
        state = plan.fold(workflow_events(n, 1_700_000_000_000 + n))
        assert state is not None
        assert state.status.value == kind_of(n).value, n
        assert state.started_ms == 1_700_000_000_000 + n
    assert {kind_of(n) for n in (1, 37, 2)} == set(Kind)


def test_kinds_are_spread_over_every_customer() -> None:
    count = 200_000
    kinds = Counter(kind_of(n) for n in range(count))
    assert kinds[Kind.RUNNING] == count // 100
    assert 0.04 < kinds[Kind.COMPENSATED] / count < 0.06
    running = Counter(customer_of(n) for n in range(count) if kind_of(n) is Kind.RUNNING)
    # 2,000 in flight over 1,000 customers: a list of one customer's finds a few.
    assert len(running) > 0.8 * CUSTOMERS
    assert max(running.values()) < 10


def test_the_table_has_every_goal_and_says_n_a_for_a_missing_figure() -> None:
    figures = {
        "settings": {"workflows": 1_000_000},
        "queries": {"describe": {"p99_ms": 12.5}},
        "client_memory": {
            "small_workflows": 10_000,
            "small": {"peak_rss_kb": 51_200},
            "large": {"peak_rss_kb": 52_224},
        },
        "throughput": {"without_queries_per_s": 500.0, "with_queries_per_s": 475.0,
                       "change": -0.05},
    }  # fmt: skip
    rows = {name: (value, goal) for name, value, goal in report_rows(figures)}
    assert rows["describe p99, 1,000,000 held"] == ("12.5 ms", "< 100 ms")
    assert rows["list RUNNING + customer_id, page of 100, p99"] == ("n/a", "< 2 s")
    assert rows["client peak RSS, 10,000 / 1,000,000 held"] == ("50 / 51 MB (x1.02)",
                                                                 "does not grow")  # fmt: skip
    assert rows["sagas/s without / with 50 queries/s"] == ("500 / 475 (paired -5.0%)", "within 10%")
    assert rows["replay of the bulk load (events/s)"] == ("n/a", "")


def test_each_asked_window_is_set_against_the_quiet_ones_on_both_sides() -> None:
    rates = [("quiet", 100.0), ("asked", 90.0), ("quiet", 80.0), ("asked", 81.0),
             ("quiet", 82.0), ("quiet", 50.0), ("asked", 10.0)]  # fmt: skip
    windows = [{"kind": kind, "completed_per_s": rate} for kind, rate in rates]
    # 90 against (100 + 80) / 2, 81 against (80 + 82) / 2; the last asked window has no
    # quiet one after it, so it is not compared.
    assert paired_changes(windows) == [90 / 90 - 1, 81 / 81 - 1]
    drifting = [{"kind": k, "completed_per_s": r} for k, r in
                [("quiet", 1000.0), ("asked", 950.0), ("quiet", 900.0), ("asked", 850.0),
                 ("quiet", 800.0)]]  # fmt: skip
    changes = paired_changes(drifting)
    assert [round(c, 4) for c in changes] == [0.0, 0.0]
