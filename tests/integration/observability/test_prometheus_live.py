"""Every dashboard expression and rule, evaluated by a real Prometheus on a running worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from examples.order_saga import OUT_OF_STOCK, OrderInput, saga
from sagas.client import SagaClient
from sagas.events import WorkflowStatus
from tests.integration.observability.conftest import ObservedWorker, PrometheusServer
from topics.naming import TopicNames

DASHBOARD = (
    Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboards" / "kafka-sagas.json"
)
RULES = DASHBOARD.parents[2] / "prometheus" / "rules" / "kafka-sagas.rules.yml"
# What Grafana would put in the dashboard's variables over a 5-minute view.
GRAFANA_VARIABLES = {"$saga": ".*", "$__rate_interval": "30s", "$__range": "5m"}

pytestmark = pytest.mark.timeout(180)


def order(order_id: str, sku: str = "mug") -> OrderInput:
    return OrderInput(order_id=order_id, customer_email="a@b.c", amount_cents=100, sku=sku)


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    expressions = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    for name, value in GRAFANA_VARIABLES.items():
        expressions = [expr.replace(name, value) for expr in expressions]
    return expressions


def run_sagas(worker: ObservedWorker, count: int, prefix: str) -> list[str]:
    with SagaClient(worker.kafka) as client:
        return [client.start(saga, order(f"{prefix}{i}")) for i in range(count)]


def lag_alerts(prometheus: PrometheusServer, group: str) -> list[str]:
    alerts = prometheus.get("/api/v1/alerts")["alerts"]
    return [
        alert["state"]
        for alert in alerts
        if alert["labels"]["alertname"] == "SagasConsumerLagHigh"
        and alert["labels"].get("group") == group
    ]


def test_every_dashboard_expression_and_rule_reads_data(
    observed_worker: ObservedWorker, prometheus: PrometheusServer
) -> None:
    # Counters seen before the runs, so the runs show as an increase.
    prometheus.wait_for(
        "the worker was scraped",
        lambda: bool(prometheus.query("sagas_step_dispatch_objective_seconds")),
        20,
    )
    with SagaClient(observed_worker.kafka) as client:
        good = [client.start(saga, order(f"d{i}")) for i in range(5)]
        bad = client.start(saga, order("d-bad", min(OUT_OF_STOCK)))
        for wid in good:
            assert client.result(saga, wid, timeout=60).status is WorkflowStatus.COMPLETED
        assert client.result(saga, bad, timeout=60).status is WorkflowStatus.COMPENSATED
    # Rates need two scrapes after the runs; the rule groups an evaluation after that.
    prometheus.wait_for(
        "step dispatches were scraped twice",
        lambda: bool(prometheus.query("increase(sagas_step_dispatch_seconds_count[30s]) > 0")),
        30,
    )

    def empty_expressions() -> list[str]:
        return [expr for expr in dashboard_expressions() if not prometheus.query(expr)]

    deadline = time.monotonic() + 20
    while empty_expressions() and time.monotonic() < deadline:
        time.sleep(1)
    assert empty_expressions() == []
    groups = prometheus.get("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    assert len(rules) == sum(len(group["rules"]) for group in shipped), "a rule did not load"
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    for rule in rules:
        if rule["type"] == "recording":
            assert prometheus.query(rule["name"]), f"{rule['name']} recorded nothing"
    assert prometheus.query("process_resident_memory_bytes")
    assert prometheus.query('python_info{implementation="CPython"}')


def test_lag_alert_fires_under_a_backlog_and_resolves_when_it_drains(
    observed_worker: ObservedWorker, prometheus: PrometheusServer
) -> None:
    names = TopicNames(saga.name, observed_worker.kafka.topic_prefix)
    group = names.worker_group(observed_worker.versions.queues)
    observed_worker.stop_steps()
    started = run_sagas(observed_worker, 10, "lag")

    prometheus.wait_for(
        "the lag alert fired for the stopped step worker's group",
        lambda: lag_alerts(prometheus, group) == ["firing"],
        30,
    )
    [age] = prometheus.query(f'saga_group:consumer_lag_seconds:max{{group="{group}"}}')
    assert float(age["value"][1]) > 3
    [live] = prometheus.query(f'sagas_consumer_group_live{{group="{group}"}}')
    assert live["value"][1] == "0"

    observed_worker.start_steps()
    with SagaClient(observed_worker.kafka) as client:
        for wid in started:
            assert client.result(saga, wid, timeout=60).status is WorkflowStatus.COMPLETED
    prometheus.wait_for(
        "the lag alert resolved once the backlog drained",
        lambda: lag_alerts(prometheus, group) == [],
        30,
    )
