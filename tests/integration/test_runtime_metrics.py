"""The runtime's Prometheus metrics move as workflows run, lag included."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from examples import expense_saga as expense
from examples.order_saga import OUT_OF_STOCK, OrderInput, saga
from processors.metrics import PrometheusMetrics
from processors.runner import WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import WorkflowStatus


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def order(order_id: str, sku: str) -> OrderInput:
    return OrderInput(order_id=order_id, customer_email="a@b.c", amount_cents=100, sku=sku)


def test_metrics_count_workflows_steps_and_lag(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("m") + ".")
    versions = compile_versions(saga)
    provision(versions, kafka)
    registry = CollectorRegistry()
    runner = WorkerRunner(
        versions,
        kafka,
        processor_settings=ProcessorSettings(state_dir=tmp_path),
        metrics=PrometheusMetrics(registry),
        lag_interval=timedelta(milliseconds=200),
    ).start()
    try:
        runner.wait_ready()
        with SagaClient(kafka) as client:
            good = [client.start(saga, order(f"g{i}", "mug")) for i in range(3)]
            bad = client.start(saga, order("b", min(OUT_OF_STOCK)))
            for wid in good:
                assert client.result(saga, wid, timeout=60).status is WorkflowStatus.COMPLETED
            assert client.result(saga, bad, timeout=60).status is WorkflowStatus.COMPENSATED
        runner.report_lag()
    finally:
        runner.stop()
    runner.raise_errors()

    assert sample(registry, "sagas_workflows_started_total", saga="order") == 4
    assert sample(registry, "sagas_workflows_ended_total", saga="order", status="COMPLETED") == 3
    assert sample(registry, "sagas_workflows_ended_total", saga="order", status="COMPENSATED") == 1
    assert (
        sample(registry, "sagas_events_processed_total", saga="order", type="start_requested") == 4
    )
    succeeded = sample(registry, "sagas_step_duration_seconds_count", saga="order",
                       step="charge_payment", outcome="succeeded")  # fmt: skip
    assert succeeded == 4
    refunds = sample(registry, "sagas_step_duration_seconds_count", saga="order",
                     step="charge_payment", outcome="compensated")  # fmt: skip
    assert refunds == 1
    assert (
        sample(registry, "sagas_step_dispatch_seconds_count", saga="order", step="charge_payment")
        >= 4
    )
    assert sample(registry, "sagas_transaction_commit_seconds_count", processor="saga") >= 1
    # Every workflow ended, so no timer is left (step deadlines are cancelled on answers).
    assert sample(registry, "sagas_timers_pending", saga="order") == 0
    events = f"{kafka.topic_prefix}order.events"
    lags = [
        s for metric in registry.collect() if metric.name == "sagas_consumer_lag_records"
        for s in metric.samples if s.labels["topic"] == events
    ]  # fmt: skip
    assert lags, "the processor group's lag on the event topic is reported"
    assert all(s.value >= 0 for s in lags)


def _in_flight_after(
    runner: WorkerRunner, registry: CollectorRegistry, expected: float, timeout_s: float = 30.0
) -> float:
    """The in-flight gauge once it reads ``expected``, or its last value at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        runner.raise_errors()
        value = sample(registry, "sagas_workflows_in_flight", saga="expense")
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_in_flight_gauge_counts_open_workflows_and_survives_a_restart(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("f") + ".")
    versions = compile_versions(expense.saga)
    provision(versions, kafka)

    def start_runner(registry: CollectorRegistry) -> WorkerRunner:
        runner = WorkerRunner(
            versions,
            kafka,
            processor_settings=ProcessorSettings(state_dir=tmp_path),
            metrics=PrometheusMetrics(registry),
        ).start()
        runner.wait_ready()
        return runner

    with SagaClient(kafka) as client:
        first = CollectorRegistry()
        runner = start_runner(first)
        try:
            claims = [
                client.start(expense.saga, expense.Expense(expense_id=f"e{i}", employee="ada",
                                                           amount_cents=100 * i))
                for i in range(4)
            ]  # fmt: skip
            # Each claim waits for its decision: four workflows in flight.
            assert _in_flight_after(runner, first, 4) == 4
            client.signal(expense.saga, claims[0], "approved", {"approver": "bob"})
            status = client.result(expense.saga, claims[0], timeout=60).status
            assert status is WorkflowStatus.COMPLETED
            assert _in_flight_after(runner, first, 3) == 3
        finally:
            runner.stop()
        runner.raise_errors()

        # A new process counts the open workflows from its restored partitions.
        second = CollectorRegistry()
        assert sample(second, "sagas_workflows_in_flight", saga="expense") == 0
        runner = start_runner(second)
        try:
            assert _in_flight_after(runner, second, 3) == 3
            client.signal(expense.saga, claims[1], "rejected", {"approver": "bob"})
            status = client.result(expense.saga, claims[1], timeout=60).status
            assert status is WorkflowStatus.COMPLETED
            assert _in_flight_after(runner, second, 2) == 2
        finally:
            runner.stop()
        runner.raise_errors()
