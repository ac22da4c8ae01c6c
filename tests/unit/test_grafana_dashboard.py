"""Checks that the provisioned Grafana dashboard queries only what the workers export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from processors.metrics import PrometheusMetrics
from sagas.events import WorkflowStatus
from topics.lag_time import PartitionLagTime
from topics.saga_groups import GroupLagTime

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "kafka-sagas.json"
)

# The metrics the dashboard may query: what processors/metrics.py agreed to export.
METRICS = {
    "sagas_workflows_started_total": ("counter", {"saga"}),
    "sagas_workflows_ended_total": ("counter", {"saga", "status"}),
    "sagas_events_processed_total": ("counter", {"saga", "type"}),
    "sagas_dlq_records_total": ("counter", {"saga", "reason"}),
    "sagas_step_duration_seconds": ("histogram", {"saga", "step", "outcome"}),
    "sagas_step_dispatch_seconds": ("histogram", {"saga", "step"}),
    "sagas_step_end_to_end_seconds": ("histogram", {"saga", "step"}),
    "sagas_step_dispatch_objective_seconds": ("gauge", {"saga", "step"}),
    "sagas_step_dispatch_over_objective_total": ("counter", {"saga", "step"}),
    "sagas_transaction_commit_seconds": ("histogram", {"processor"}),
    "sagas_batch_size": ("histogram", {"processor"}),
    "sagas_consumer_lag_records": ("gauge", {"saga", "group", "role", "topic", "partition"}),
    "sagas_consumer_lag_seconds": ("gauge", {"saga", "group", "role", "topic", "partition"}),
    "sagas_consumer_group_live": ("gauge", {"saga", "group", "role"}),
    "sagas_broker_reachable": ("gauge", {"saga"}),
    "sagas_query_process_exits_total": ("counter", {"saga"}),
    "sagas_timers_pending": ("gauge", {"saga"}),
    "sagas_workflows_parked": ("gauge", {"saga"}),
    "sagas_workflows_in_flight": ("gauge", {"saga"}),
}
# Recording rules of deploy/prometheus/rules/kafka-sagas.rules.yml the dashboard may read.
RECORDED = {
    "saga_step:dispatch_over_objective:ratio_rate5m": {"saga", "step"},
    "saga_step:dispatch_over_objective:ratio_rate1h": {"saga", "step"},
}
# What prometheus_client's process, platform and GC collectors export on the registry.
COLLECTED_PREFIXES = ("process_", "python_")
METRIC_REFERENCE = re.compile(r"\bsagas?_[a-z0-9_]+(?::[a-z0-9_]+)*")
LABEL_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"label_values\(\s*\w+\s*,\s*(\w+)\s*\)")


def _series_labels() -> dict[str, set[str]]:
    """Every series name a query may use, with the labels its samples carry."""
    series: dict[str, set[str]] = {}
    for metric, (kind, labels) in METRICS.items():
        if kind == "histogram":
            series[metric + "_bucket"] = labels | {"le"}
            series[metric + "_count"] = labels
            series[metric + "_sum"] = labels
        else:
            series[metric] = labels
    return {**series, **RECORDED}


SERIES = _series_labels()


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, including those nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL text the dashboard sends: panel targets and template variable queries."""
    queries = [
        target["expr"] for panel in _panels(dashboard) for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def _query_problems(query: str) -> list[str]:
    """Series a query names that no worker exports, and labels none of its series carry."""
    names = METRIC_REFERENCE.findall(query)
    problems = [f"unknown series {name}" for name in names if name not in SERIES]
    carried = set().union(*(SERIES.get(name, set()) for name in names))
    used = set(LABEL_MATCHER.findall(query)) | set(LABEL_VALUES.findall(query))
    for grouping in GROUPING.findall(query):
        used |= {label.strip() for label in grouping.split(",") if label.strip()}
    problems += [f"unknown label {label}" for label in sorted(used - carried)]
    return problems


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_dashboard_queries_only_exported_metrics_and_labels(dashboard: dict[str, Any]) -> None:
    queries = _queries(dashboard)

    assert len(queries) > len(METRICS)
    assert {query: _query_problems(query) for query in queries if _query_problems(query)} == {}


def test_query_check_catches_unknown_series_and_labels() -> None:
    assert _query_problems("rate(sagas_workflows_ended_count[5m])") == [
        "unknown series sagas_workflows_ended_count"
    ]
    assert _query_problems('sum by (queue) (sagas_timers_pending{sagaa="x"})') == [
        "unknown label queue",
        "unknown label sagaa",
    ]
    assert _query_problems("label_values(sagas_timers_pending, queue)") == ["unknown label queue"]


def test_runtime_exports_exactly_the_dashboard_metrics() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    metrics.workflow_started("order")
    metrics.workflow_ended("order", WorkflowStatus.COMPLETED.value)
    metrics.event_processed("order", "started")
    metrics.dlq_record("order", "undecodable")
    metrics.transaction_committed("saga", 0.004, 12)
    metrics.step_finished("order", "reserve", "succeeded", 0.02)
    metrics.dispatch_objective("order", "reserve", 0.05)
    metrics.command_dispatched("order", "reserve", 0.003)
    metrics.step_ended("order", "reserve", 0.03)
    metrics.timers_pending("order", 2)
    metrics.workflows_parked("order", 0)
    metrics.workflows_in_flight("order", 3)
    metrics.broker_reachable("order", True)
    metrics.query_process_exited("order")
    partition = PartitionLagTime("order.processor", "order.events", 0, 3, 5, 2, 1.5, 1)
    metrics.consumer_group_lag(
        GroupLagTime("order", "order.processor", "processor", ("order.events",), True, (partition,))
    )

    exported = {
        sample.name: set(sample.labels)
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created") and not sample.name.startswith(COLLECTED_PREFIXES)
    }
    collected = {
        sample.name
        for family in registry.collect()
        for sample in family.samples
        if sample.name.startswith(COLLECTED_PREFIXES)
    }

    assert exported == {name: labels for name, labels in SERIES.items() if name not in RECORDED}
    assert {"process_resident_memory_bytes", "python_info", "python_gc_collections_total"} <= (
        collected
    )


def test_dashboard_covers_every_required_view(dashboard: dict[str, Any]) -> None:
    queries = _queries(dashboard)

    def queried(pattern: str) -> bool:
        return any(re.search(pattern, query) for query in queries)

    for status in (WorkflowStatus.COMPLETED, WorkflowStatus.COMPENSATED, WorkflowStatus.FAILED):
        assert queried(rf'sagas_workflows_ended_total\{{[^}}]*status="{status.value}"')
    for histogram in ("sagas_step_duration_seconds", "sagas_transaction_commit_seconds"):
        for quantile in ("0.5", "0.99"):
            assert queried(rf"histogram_quantile\({quantile}, .*{histogram}_bucket")
    assert queried(r"by \(group, topic, partition\) \(sagas_consumer_lag_records\b")
    assert queried(r"sagas_consumer_lag_seconds")
    assert queried(r"histogram_quantile\(0.99, .*sagas_step_dispatch_seconds_bucket")
    assert queried(r"saga_step:dispatch_over_objective:ratio_rate5m")
    assert queried(r"sagas_dlq_records_total")


def test_dashboard_is_well_formed_for_provisioning(dashboard: dict[str, Any]) -> None:
    panels = list(_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    datasources = [target["datasource"] for panel in panels for target in panel.get("targets", [])]

    assert dashboard["uid"] == dashboard["title"] == "kafka-sagas"
    assert len(ids) == len(set(ids))
    assert datasources
    assert all(ds == {"type": "prometheus", "uid": "${datasource}"} for ds in datasources)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['title']!r} is wider than the grid"
