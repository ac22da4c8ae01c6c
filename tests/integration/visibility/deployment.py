"""A saga deployed on the test broker: its step worker, processors started and stopped
by the test, and a client; whatever is still running is stopped at the end, and what any
worker raised fails the test then."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from processors.metrics import Metrics
from processors.query_endpoint import QuerySettings
from processors.runner import Role, WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions


class Deployment:
    """What :func:`deployed` started; processors come and go with :meth:`processor` and
    :meth:`stop`."""

    def __init__(self, versions: SagaVersions, kafka: KafkaSettings, *, steps: bool) -> None:
        self.versions = versions
        self.kafka = kafka
        self.steps = WorkerRunner(versions, kafka, role=Role.STEPS).start() if steps else None
        self.client = SagaClient(kafka)
        self._running: list[WorkerRunner] = []

    def processor(
        self,
        state: Path,
        instance: str,
        *,
        retention: timedelta | None = None,
        query: QuerySettings | None = None,
        metrics: Metrics | None = None,
        ready_within: float = 60.0,
    ) -> WorkerRunner:
        """Start a processor on ``state`` and wait until it serves its partitions."""
        runner = WorkerRunner(
            self.versions,
            self.kafka,
            role=Role.PROCESSOR,
            processor_settings=ProcessorSettings(
                state_dir=state, instance_id=instance, retention=retention
            ),
            query_settings=query,
            metrics=metrics or Metrics(),
        ).start()
        self._running.append(runner)
        runner.wait_ready(ready_within)
        return runner

    def stop(self, runner: WorkerRunner) -> None:
        """Stop one processor now; what it raised fails the test at once."""
        self._running.remove(runner)
        runner.stop()
        runner.raise_errors()

    def close(self) -> None:
        """Stop the processors, then the step worker; close the client."""
        for runner in reversed(self._running):
            runner.stop()
        if self.steps is not None:
            self.steps.stop()
        self.client.close()

    def raise_errors(self) -> None:
        for runner in [*self._running, *([self.steps] if self.steps else [])]:
            runner.raise_errors()


@contextmanager
def deployed(
    versions: SagaVersions, kafka: KafkaSettings, *, steps: bool = True
) -> Iterator[Deployment]:
    """Provision the saga's topics and start its step worker (unless ``steps=False``)."""
    provision(versions, kafka)
    deployment = Deployment(versions, kafka, steps=steps)
    try:
        if deployment.steps is not None:
            deployment.steps.wait_ready()
        yield deployment
    finally:
        deployment.close()
    deployment.raise_errors()
