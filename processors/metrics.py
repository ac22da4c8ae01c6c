"""Metrics of the runtime, behind a small hook interface with Prometheus as one backend."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Hooks the runtime calls; this base records nothing (tests, embedded use)."""

    def workflow_started(self, saga: str) -> None:
        """A new workflow began."""

    def workflow_ended(self, saga: str, status: str) -> None:
        """A workflow reached a final status."""

    def event_processed(self, saga: str, event_type: str) -> None:
        """The saga processor applied one event."""

    def dlq_record(self, saga: str, reason: str) -> None:
        """A record went to the dead-letter queue."""

    def transaction_committed(self, processor: str, seconds: float, batch_size: int) -> None:
        """A Kafka transaction committed after ``seconds`` holding ``batch_size`` inputs."""

    def step_finished(self, saga: str, step: str, outcome: str, seconds: float) -> None:
        """A step worker finished running an action or compensation."""

    def command_dispatched(self, saga: str, queue: str, seconds: float) -> None:
        """An action started ``seconds`` after its command was created."""

    def timers_pending(self, saga: str, count: int) -> None:
        """How many durable timers are waiting in this process's stores."""

    def consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        """The lag of a consumer group on one partition."""


class PrometheusMetrics(Metrics):
    """Prometheus metrics in base units, labelled by saga, never named after it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Labelled children, looked up once: these hooks run for every event and command.
        self._steps: dict[tuple[str, str, str], Any] = {}
        self._dispatches: dict[tuple[str, str], Any] = {}
        self._event_counts: dict[tuple[str, str], Any] = {}
        self._started = Counter(
            "sagas_workflows_started", "Workflows started.", ["saga"], registry=registry
        )
        self._ended = Counter(
            "sagas_workflows_ended", "Workflows ended, by final status.", ["saga", "status"],
            registry=registry,
        )  # fmt: skip
        self._events = Counter(
            "sagas_events_processed", "Events applied by the saga processor.", ["saga", "type"],
            registry=registry,
        )  # fmt: skip
        self._dlq = Counter(
            "sagas_dlq_records", "Records sent to the dead-letter queue.", ["saga", "reason"],
            registry=registry,
        )  # fmt: skip
        self._commit = Histogram(
            "sagas_transaction_commit_seconds", "Kafka transaction commit time.", ["processor"],
            buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self._batch = Histogram(
            "sagas_batch_size", "Input records per transaction.", ["processor"],
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000), registry=registry,
        )  # fmt: skip
        self._step = Histogram(
            "sagas_step_duration_seconds", "Time an action or compensation ran.",
            ["saga", "step", "outcome"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self._dispatch = Histogram(
            "sagas_dispatch_latency_seconds", "Command created to action started.",
            ["saga", "queue"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self._timers = Gauge(
            "sagas_timers_pending", "Durable timers waiting.", ["saga"], registry=registry
        )
        self._lag = Gauge(
            "sagas_consumer_lag", "Records not yet consumed.", ["group", "topic", "partition"],
            registry=registry,
        )  # fmt: skip

    def workflow_started(self, saga: str) -> None:
        self._started.labels(saga).inc()

    def workflow_ended(self, saga: str, status: str) -> None:
        self._ended.labels(saga, status).inc()

    def event_processed(self, saga: str, event_type: str) -> None:
        key = (saga, event_type)
        child = self._event_counts.get(key)
        if child is None:
            child = self._event_counts[key] = self._events.labels(saga, event_type)
        child.inc()

    def dlq_record(self, saga: str, reason: str) -> None:
        self._dlq.labels(saga, reason).inc()

    def transaction_committed(self, processor: str, seconds: float, batch_size: int) -> None:
        self._commit.labels(processor).observe(seconds)
        self._batch.labels(processor).observe(batch_size)

    def step_finished(self, saga: str, step: str, outcome: str, seconds: float) -> None:
        key = (saga, step, outcome)
        child = self._steps.get(key)
        if child is None:
            child = self._steps[key] = self._step.labels(saga, step, outcome)
        child.observe(seconds)

    def command_dispatched(self, saga: str, queue: str, seconds: float) -> None:
        key = (saga, queue)
        child = self._dispatches.get(key)
        if child is None:
            child = self._dispatches[key] = self._dispatch.labels(saga, queue)
        child.observe(seconds)

    def timers_pending(self, saga: str, count: int) -> None:
        self._timers.labels(saga).set(count)

    def consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        self._lag.labels(group, topic, str(partition)).set(lag)
