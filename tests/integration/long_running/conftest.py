"""Fixtures of the long-running tests: a saga's runtime on topics of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from processors.runner import Role, WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.definition import Saga
from sagas.engine.versions import SagaVersions, compile_versions


@dataclass
class Runtime:
    """A saga's topics, an in-process worker running all its versions, and a client."""

    kafka: KafkaSettings
    versions: SagaVersions
    client: SagaClient
    runners: list[WorkerRunner] = field(default_factory=list)

    def run_worker(
        self,
        versions: SagaVersions,
        state_dir: Path,
        *,
        role: Role = Role.ALL,
        queues: list[str] | None = None,
    ) -> WorkerRunner:
        """Start a worker for ``versions`` (by default its processor and every queue's steps)
        and wait until it is ready."""
        runner = WorkerRunner(
            versions,
            self.kafka,
            role=role,
            queues=queues,
            processor_settings=ProcessorSettings(state_dir=state_dir),
        ).start()
        self.runners.append(runner)
        runner.wait_ready()
        return runner


@pytest.fixture
def saga_runtime(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., Runtime]]:
    """Return a function that provisions a saga's topics and starts a worker for it."""
    made: list[Runtime] = []

    def make(*sagas: Saga[Any], start_worker: bool = True) -> Runtime:
        versions = compile_versions(sagas)
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
        provision(versions, kafka)
        runtime = Runtime(kafka, versions, SagaClient(kafka))
        made.append(runtime)
        if start_worker:
            runtime.run_worker(versions, tmp_path / f"state-{len(made)}")
        return runtime

    yield make
    for runtime in made:
        runtime.client.close()
        for runner in runtime.runners:
            runner.stop()
    for runtime in made:
        for runner in runtime.runners:
            runner.raise_errors()
