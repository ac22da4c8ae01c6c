"""Run a saga's processor and step workers in one process, as ``sagas worker`` does."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum

from processors.metrics import Metrics
from processors.query_endpoint import QuerySettings
from processors.saga_processor import SagaProcessor
from processors.settings import ProcessorSettings, WorkerSettings
from processors.step_worker import StepWorker
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError
from topics.admin import AdminSource, admin_client, cluster_replication
from topics.naming import TopicNames
from topics.provisioning import ProvisionReport, ensure_topics
from topics.saga_groups import saga_lag
from topics.specs import TopicSettings, TopicSpec, all_topic_specs

log = logging.getLogger(__name__)


class Role(StrEnum):
    """What a worker process runs."""

    ALL = "all"
    PROCESSOR = "processor"
    STEPS = "steps"


def provision(
    versions: SagaVersions, kafka: KafkaSettings, settings: TopicSettings | None = None
) -> ProvisionReport:
    """Create the saga's topics and its queues' topics if missing (idempotent).

    Replication not set in ``settings`` follows the cluster (see :func:`saga_specs`).
    """
    client = admin_client(kafka.client_config())
    return ensure_topics(client, saga_specs(client, versions, kafka, settings))


def saga_specs(
    admin: AdminSource,
    versions: SagaVersions,
    kafka: KafkaSettings,
    settings: TopicSettings | None = None,
    *,
    timeout_s: float = 30.0,
) -> list[TopicSpec]:
    """Every topic the saga and its queues need, replication resolved against the cluster."""
    chosen = settings or TopicSettings()
    replication = chosen.replication(cluster_replication(admin_client(admin), timeout_s))
    names = TopicNames(versions.name, kafka.topic_prefix)
    return all_topic_specs(names, chosen, sorted(versions.queues), replication)


@dataclass
class WorkerRunner:
    """Threads running a saga processor and/or a step worker until stopped."""

    versions: SagaVersions
    kafka: KafkaSettings
    role: Role = Role.ALL
    queues: Iterable[str] | None = None
    processor_settings: ProcessorSettings = field(default_factory=ProcessorSettings)
    worker_settings: WorkerSettings = field(default_factory=WorkerSettings)
    metrics: Metrics = field(default_factory=Metrics)
    query_settings: QuerySettings | None = None
    """Where the processor answers describe, list and query requests (default: loopback)."""
    lag_interval: timedelta | None = None
    """Publish the lag of every group of the saga to the metrics this often (None: never)."""
    processor: SagaProcessor | None = field(default=None, init=False)
    worker: StepWorker | None = field(default=None, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _errors: list[BaseException] = field(default_factory=list, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self) -> WorkerRunner:
        """Start the threads; returns at once."""
        if self.role in (Role.ALL, Role.PROCESSOR):
            self.processor = SagaProcessor(
                self.versions,
                self.kafka,
                self.processor_settings,
                metrics=self.metrics,
                query=self.query_settings,
            )
            self._spawn("saga-processor", self.processor.run)
        if self.role in (Role.ALL, Role.STEPS):
            queues = (
                sorted(self.queues) if self.queues is not None else sorted(self.versions.queues)
            )
            worker_settings = self.worker_settings
            if worker_settings.state_dir is None:
                worker_settings = replace(
                    worker_settings, state_dir=self.processor_settings.state_dir
                )
            self.worker = StepWorker(
                [self.versions], queues, self.kafka, worker_settings, metrics=self.metrics
            )
            self._spawn("step-worker", self.worker.run)
        if self.lag_interval is not None:
            self._spawn("lag-reporter", self._report_lag_periodically)
        return self

    def _report_lag_periodically(self) -> None:
        assert self.lag_interval is not None
        while not self._stopping.wait(self.lag_interval.total_seconds()):
            try:
                self.report_lag()
            except SagaError as exc:
                # Lag is for dashboards: a slow admin request must not stop the work.
                log.warning("reading consumer lag failed: %s", exc)

    def report_lag(self) -> None:
        """Publish the lag in records and seconds of every consumer group of the saga.

        Every group, not only this process's: a processor or worker with no live member
        is the case an alert is for, and nobody else would report it.
        """
        names = TopicNames(self.versions.name, self.kafka.topic_prefix)
        config = {**self.kafka.client_config(), "logger": log}
        timeout_s = min(self.lag_interval.total_seconds(), 10.0) if self.lag_interval else 10.0
        try:
            groups = saga_lag(config, names, self.versions.queues, timeout_s=max(timeout_s, 2.0))
        except SagaError:
            self.metrics.broker_reachable(self.versions.name, False)
            raise
        self.metrics.broker_reachable(self.versions.name, True)
        for group in groups:
            self.metrics.consumer_group_lag(group)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every part has its first assignment (and restored its state)."""
        for part in (self.processor, self.worker):
            if part is not None and not part.ready.wait(timeout):
                self.raise_errors()
                raise SagaError(f"{type(part).__name__} got no partitions within {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every part and wait for its thread."""
        self._stopping.set()
        for part in (self.processor, self.worker):
            if part is not None:
                part.stop()
        for thread in self._threads:
            thread.join(timeout)

    def join(self) -> None:
        """Wait until every thread has ended (after :meth:`stop` or a failure)."""
        for thread in self._threads:
            thread.join()

    def raise_errors(self) -> None:
        """Re-raise the first error a part failed with, if any."""
        if self._errors:
            raise self._errors[0]

    @property
    def alive(self) -> bool:
        """Whether every started part is still running."""
        return all(thread.is_alive() for thread in self._threads)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                if isinstance(exc, SagaError):
                    # Ours say what is wrong in one line; a traceback would bury it.
                    log.error("%s stopped: %s", name, exc)
                else:
                    log.exception("%s stopped with an error", name)
                self._errors.append(exc)
                # One failed part brings the process down: a half-running worker would
                # hold partitions it does not serve.
                self._stopping.set()
                for part in (self.processor, self.worker):
                    if part is not None:
                        part.stop()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
