"""Run a saga's processor and step workers in one process, as ``sagas worker`` does."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from processors.metrics import Metrics
from processors.saga_processor import SagaProcessor
from processors.settings import ProcessorSettings, WorkerSettings
from processors.step_worker import StepWorker
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError
from topics.lag import consumer_lag
from topics.naming import TopicNames
from topics.provisioning import ProvisionReport, ensure_topics
from topics.specs import TopicSettings, all_topic_specs

log = logging.getLogger(__name__)


class Role(StrEnum):
    """What a worker process runs."""

    ALL = "all"
    PROCESSOR = "processor"
    STEPS = "steps"


def provision(
    versions: SagaVersions, kafka: KafkaSettings, settings: TopicSettings | None = None
) -> ProvisionReport:
    """Create the saga's topics and its queues' topics if missing (idempotent)."""
    names = TopicNames(versions.name, kafka.topic_prefix)
    specs = all_topic_specs(names, settings or TopicSettings(), sorted(versions.queues))
    return ensure_topics(kafka.client_config(), specs)


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
    lag_interval: timedelta | None = None
    """Publish consumer lag to the metrics this often (None: never)."""
    processor: SagaProcessor | None = field(default=None, init=False)
    worker: StepWorker | None = field(default=None, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _errors: list[BaseException] = field(default_factory=list, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self) -> WorkerRunner:
        """Start the threads; returns at once."""
        if self.role in (Role.ALL, Role.PROCESSOR):
            self.processor = SagaProcessor(
                self.versions, self.kafka, self.processor_settings, metrics=self.metrics
            )
            self._spawn("saga-processor", self.processor.run)
        if self.role in (Role.ALL, Role.STEPS):
            queues = (
                sorted(self.queues) if self.queues is not None else sorted(self.versions.queues)
            )
            self.worker = StepWorker(
                [self.versions], queues, self.kafka, self.worker_settings, metrics=self.metrics
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
        """Publish the consumer lag of this process's groups to the metrics."""
        names = TopicNames(self.versions.name, self.kafka.topic_prefix)
        groups: list[tuple[str, list[str]]] = []
        if self.processor is not None:
            groups.append((names.processor_group, [names.events]))
        if self.worker is not None:
            groups.append((self.worker.group, list(self.worker.topics)))
        config = self.kafka.client_config()
        for group, topics in groups:
            for lag in consumer_lag(config, group, topics):
                self.metrics.consumer_lag(group, lag.topic, lag.partition, lag.lag)

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
