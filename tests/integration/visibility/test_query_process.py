"""Over RocksDB a child process answers the processor's queries: it sees each committed
write, is started again when it dies, and does not outlive the processor. A saga that
another process cannot import is answered in the processor's own process."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from processors.metrics import Metrics, PrometheusMetrics
from processors.query_endpoint import QueryEndpoint
from sagas import Saga, StepContext, StepKind
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.errors import SagaError
from tests.integration.visibility import shop_saga
from tests.integration.visibility.deployment import deployed

VERSIONS = compile_versions(shop_saga.saga)


@contextmanager
def _deployed(
    versions: SagaVersions, kafka: KafkaSettings, state: Path, metrics: Metrics | None = None
) -> Iterator[tuple[QueryEndpoint, SagaClient]]:
    """A step worker and a processor on RocksDB, ready, with a client; stopped after."""
    with deployed(versions, kafka) as deployment:
        runner = deployment.processor(state, "q", metrics=metrics)
        assert runner.processor is not None
        assert runner.processor.query_endpoint is not None
        yield runner.processor.query_endpoint, deployment.client


def _kafka(bootstrap: str, unique_name: Callable[[str], str]) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=unique_name("") + ".")


def _described(
    client: SagaClient, saga: Any, wid: str, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        try:
            found = client.describe(saga, wid)
            if check(found):
                return found
        except SagaError:
            pass  # not there yet, or the endpoint is starting again
        assert time.monotonic() < deadline, f"{wid} was never described as expected"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.timeout(180)
def test_the_query_process_answers_and_is_started_again_when_it_dies(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    kafka = _kafka(kafka_bootstrap, unique_name)
    with _deployed(VERSIONS, kafka, tmp_path, PrometheusMetrics(registry)) as (endpoint, client):
        process = endpoint.process
        assert process is not None, "a RocksDB store is read by a query process"
        first = process.pid
        assert first != os.getpid()
        assert _alive(first)

        order = shop_saga.Order(customer_id="c-3", total=4)
        client.start(shop_saga.saga, order, workflow_id="order-1", wait=False)
        client.flush()
        waiting = _described(client, shop_saga.saga, "order-1", lambda d: d["waits"] == ["approve"])
        assert waiting["results"] == {"reserve": 8}
        assert waiting["attributes"] == {"customer_id": "c-3", "total": 4}

        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while process.pid == first:
            assert time.monotonic() < deadline, "no query process was started again"
            time.sleep(0.1)
        exits = registry.get_sample_value(
            "sagas_query_process_exits_total", {"saga": shop_saga.saga.name}
        )
        assert exits == 1, "the exit is counted for the operator's dashboard"
        again = _described(client, shop_saga.saga, "order-1", lambda d: d["status"] == "RUNNING")
        assert again["waits"] == ["approve"]
        # What the processor writes after the restart reaches the new process too.
        client.signal(shop_saga.saga, "order-1", "approve", check=False)
        client.flush()
        _described(client, shop_saga.saga, "order-1", lambda d: d["status"] == "COMPLETED")
        assert client.query(shop_saga.saga, "order-1", "summary") == {
            "customer": "c-3", "reserved": 8, "status": "COMPLETED",
        }  # fmt: skip
        second = process.pid
    assert not _alive(second), "the query process outlived its processor"


class _Input(shop_saga.Order):
    pass


def _local_saga(name: str) -> Saga[_Input]:
    saga: Saga[_Input] = Saga(name, input=_Input)

    @saga.step(kind=StepKind.PIVOT)
    def only(ctx: StepContext[_Input]) -> int:
        return ctx.input.total

    return saga


@pytest.mark.timeout(120)
def test_a_saga_declared_in_a_function_is_answered_by_the_processor_itself(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    saga = _local_saga(unique_name("local"))
    versions = compile_versions(saga)
    with _deployed(versions, _kafka(kafka_bootstrap, unique_name), tmp_path) as (endpoint, client):
        assert endpoint.process is None
        client.start(saga, _Input(customer_id="c-1", total=6), workflow_id="local-1", wait=False)
        client.flush()
        done = _described(client, saga, "local-1", lambda d: d["status"] == "COMPLETED")
        assert done["results"] == {"only": 6}
