"""Metrics of the runtime, behind a small hook interface with Prometheus as one backend."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from topics.saga_groups import GroupLagTime

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

    def command_dispatched(self, saga: str, step: str, seconds: float) -> None:
        """An action started ``seconds`` after its command was created."""

    def step_ended(self, saga: str, step: str, seconds: float) -> None:
        """A step's answer was ready ``seconds`` after its command was created."""

    def dispatch_objective(self, saga: str, step: str, seconds: float) -> None:
        """The p99 within which ``step``'s commands should start (its dispatch objective)."""

    def timers_pending(self, saga: str, count: int) -> None:
        """How many durable timers are waiting in this process's stores."""

    def workflows_parked(self, saga: str, count: int) -> None:
        """How many workflows in this process's partitions wait behind a dead letter."""

    def workflows_in_flight(self, saga: str, count: int) -> None:
        """How many workflows in this process's partitions have not ended yet."""

    def consumer_group_lag(self, lag: GroupLagTime) -> None:
        """The lag of one consumer group of a saga, per partition, in records and seconds."""

    def broker_reachable(self, saga: str, reachable: bool) -> None:
        """Whether this process's last request to the Kafka cluster was answered."""

    def query_process_exited(self, saga: str) -> None:
        """The processor's query process exited unasked (it is started again)."""


class PrometheusMetrics(Metrics):
    """Prometheus metrics in base units, labelled by saga, never named after it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Labelled children, looked up once: these hooks run for every event and command.
        self._steps: dict[tuple[str, str, str], Any] = {}
        self._dispatches: dict[tuple[str, str], Any] = {}
        self._objectives: dict[tuple[str, str], tuple[float, Any]] = {}
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
            "sagas_step_dispatch_seconds", "Command created to action started.",
            ["saga", "step"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self._end_to_end = Histogram(
            "sagas_step_end_to_end_seconds", "Command created to its answer ready.",
            ["saga", "step"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self._objective = Gauge(
            "sagas_step_dispatch_objective_seconds",
            "The p99 within which a step's commands should start.", ["saga", "step"],
            registry=registry,
        )  # fmt: skip
        # Counted at the source: a histogram can only compare against its bucket bounds,
        # and an objective need not be one of them.
        self._over = Counter(
            "sagas_step_dispatch_over_objective",
            "Dispatches slower than the step's objective.", ["saga", "step"], registry=registry,
        )  # fmt: skip
        self._timers = Gauge(
            "sagas_timers_pending", "Durable timers waiting.", ["saga"], registry=registry
        )
        self._parked = Gauge(
            "sagas_workflows_parked", "Workflows waiting behind a dead-lettered record.",
            ["saga"], registry=registry,
        )  # fmt: skip
        self._in_flight = Gauge(
            "sagas_workflows_in_flight",
            "Workflows started and not ended (running or compensating) in this process's "
            "partitions.", ["saga"], registry=registry,
        )  # fmt: skip
        lag_labels = ["saga", "group", "role", "topic", "partition"]
        self._lag = Gauge(
            "sagas_consumer_lag_records", "Records a consumer group has not processed yet.",
            lag_labels, registry=registry,
        )  # fmt: skip
        self._lag_age = Gauge(
            "sagas_consumer_lag_seconds",
            "Age of the oldest record a consumer group has not processed yet (0: caught up).",
            lag_labels, registry=registry,
        )  # fmt: skip
        self._live = Gauge(
            "sagas_consumer_group_live", "1 while a consumer group has a live member.",
            ["saga", "group", "role"], registry=registry,
        )  # fmt: skip
        self._reachable = Gauge(
            "sagas_broker_reachable", "1 while this process's requests to Kafka are answered.",
            ["saga"], registry=registry,
        )  # fmt: skip
        self._query_exits = Counter(
            "sagas_query_process_exits",
            "Times a processor's query process exited unasked and was started again.",
            ["saga"], registry=registry,
        )  # fmt: skip
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

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

    def command_dispatched(self, saga: str, step: str, seconds: float) -> None:
        key = (saga, step)
        child = self._dispatches.get(key)
        if child is None:
            child = self._dispatches[key] = self._dispatch.labels(saga, step)
        child.observe(seconds)
        objective = self._objectives.get(key)
        if objective is not None and seconds > objective[0]:
            objective[1].inc()

    def step_ended(self, saga: str, step: str, seconds: float) -> None:
        self._end_to_end.labels(saga, step).observe(seconds)

    def dispatch_objective(self, saga: str, step: str, seconds: float) -> None:
        self._objective.labels(saga, step).set(seconds)
        # Both series exist from the start, so a burn rate reads 0 rather than no data.
        self._dispatch.labels(saga, step)
        self._objectives[saga, step] = (seconds, self._over.labels(saga, step))

    def timers_pending(self, saga: str, count: int) -> None:
        self._timers.labels(saga).set(count)

    def workflows_parked(self, saga: str, count: int) -> None:
        self._parked.labels(saga).set(count)

    def workflows_in_flight(self, saga: str, count: int) -> None:
        self._in_flight.labels(saga).set(count)

    def consumer_group_lag(self, lag: GroupLagTime) -> None:
        self._live.labels(lag.saga, lag.group, lag.role).set(1 if lag.live else 0)
        for p in lag.partitions:
            labels = (lag.saga, lag.group, lag.role, p.topic, str(p.partition))
            self._lag.labels(*labels).set(p.records)
            self._lag_age.labels(*labels).set(p.age_seconds)

    def broker_reachable(self, saga: str, reachable: bool) -> None:
        self._reachable.labels(saga).set(1 if reachable else 0)

    def query_process_exited(self, saga: str) -> None:
        self._query_exits.labels(saga).inc()
