"""A search attribute a step sets is listed and described by the saga processors, and
still is after a restart on the same disk and a restore from the changelog alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.workflow_search import AttributeFilter, WorkflowSearch
from tests.integration.visibility import priced_saga
from tests.integration.visibility.deployment import deployed

WORKFLOWS = 20
VERSIONS = compile_versions(priced_saga.saga)


def _wid(i: int) -> str:
    return f"priced-{i:02d}"


def _listed(client: SagaClient, *where: AttributeFilter) -> dict[str, object]:
    page = client.list(priced_saga.saga, WorkflowSearch(where=where, limit=100))
    assert page.next_cursor is None
    return {str(item["workflow_id"]): item["attributes"] for item in page.items}


def _check_answers(client: SagaClient) -> None:
    # Workflow i totals 10 * i: at least 100 is i >= 10.
    found = _listed(client, AttributeFilter("order_total", ">=", 100))
    assert found == {
        _wid(i): {"customer_id": f"c-{i % 3}", "order_total": 10 * i} for i in range(10, WORKFLOWS)
    }
    assert _listed(client, AttributeFilter("order_total", "=", 70)).keys() == {_wid(7)}
    # The value every failed first attempt set was never applied.
    refused = AttributeFilter("order_total", ">=", priced_saga.REFUSED_TOTAL)
    assert _listed(client, refused) == {}
    described = client.describe(priced_saga.saga, _wid(15))
    assert described["status"] == "COMPLETED"
    assert described["attributes"] == {"customer_id": "c-0", "order_total": 150}


@pytest.mark.timeout(240)
def test_a_step_set_attribute_is_listed_and_described_across_restarts(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    with deployed(VERSIONS, kafka) as priced:
        client = priced.client
        processor = priced.processor(tmp_path / "a", "p")
        for i in range(WORKFLOWS):
            order = priced_saga.Order(customer_id=f"c-{i % 3}", quantity=i)
            client.start(priced_saga.saga, order, workflow_id=_wid(i), wait=False)
        client.flush()
        deadline = time.monotonic() + 90
        completed = WorkflowSearch(status=("COMPLETED",), limit=100)
        while len(client.list(priced_saga.saga, completed).items) < WORKFLOWS:
            assert time.monotonic() < deadline, "not every workflow completed"
            time.sleep(0.5)
        _check_answers(client)

        priced.stop(processor)
        processor = priced.processor(tmp_path / "a", "p")
        _check_answers(client)

        priced.stop(processor)
        priced.processor(tmp_path / "fresh", "p", ready_within=120)  # restored from the changelog
        _check_answers(client)
