"""Describe, list and query answered by the saga processors, across a restart and a
rebalance; retention removes ended workflows from the store and the status topic.

Ten thousand workflows with search attributes, half of them ended; the benchmark
(``bench/visibility_bench.py``) holds a million.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from processors.query_endpoint import QuerySettings
from processors.runner import provision
from processors.store.keys import START_INDEX, prefix_end
from sagas.cli.exit_codes import ExitCode
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.errors import QueryFailedError
from sagas.workflow_search import AttributeFilter, WorkflowSearch
from tests.integration.long_running.mistakes_cli import sagas
from tests.integration.processors.saga_run_checks import read_topic
from tests.integration.visibility import shop_saga
from tests.integration.visibility.deployment import deployed
from topics.admin import admin_client
from topics.naming import TopicNames

WORKFLOWS = 10_000
CUSTOMERS = 10
VERSIONS = compile_versions(shop_saga.saga)


def _wid(i: int) -> str:
    return f"order-{i:05d}"


def _approved(i: int) -> bool:
    return i % 2 == 0


def _compact_at_once(kafka: KafkaSettings, topic: str) -> None:
    """Have the broker compact ``topic`` within seconds, tombstones included."""
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            for name, value in (
                ("segment.ms", "200"),
                ("min.cleanable.dirty.ratio", "0.01"),
                ("delete.retention.ms", "100"),
                ("min.compaction.lag.ms", "0"),
            )
        ],
    )
    admin = admin_client(kafka.client_config())
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def _approve_half(client: SagaClient, count: int, customer: str) -> set[str]:
    """Start ``count`` orders, wait until each waits for its approval, approve the first
    half (which then end); returns the ids approved."""
    for i in range(count):
        order = shop_saga.Order(customer_id=customer, total=i)
        client.start(shop_saga.saga, order, workflow_id=_wid(i), wait=False)
    client.flush()
    deadline = time.monotonic() + 60
    while len(_all(client, WorkflowSearch(step="approve", limit=1000))) < count:
        assert time.monotonic() < deadline, "not every workflow reached its wait"
        time.sleep(0.3)
    approved = {_wid(i) for i in range(count // 2)}
    for wid in approved:
        client.signal(shop_saga.saga, wid, "approve", check=False)
    client.flush()
    return approved


def _all(client: SagaClient, search: WorkflowSearch) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    page = client.list(shop_saga.saga, search)
    items.extend(page.items)
    while page.next_cursor is not None:
        page = client.list(shop_saga.saga, replace(search, cursor=page.next_cursor))
        items.extend(page.items)
    return items


def _check_answers(client: SagaClient) -> None:
    completed = WorkflowSearch(
        status=("COMPLETED",), where=(AttributeFilter("customer_id", "=", "c-4"),), limit=200
    )
    found = _all(client, completed)
    expected = {_wid(i) for i in range(WORKFLOWS) if _approved(i) and i % CUSTOMERS == 4}
    assert len(found) == len(expected)
    assert {item["workflow_id"] for item in found} == expected
    order = [(-int(str(item["started_ms"])), str(item["workflow_id"])) for item in found]
    assert order == sorted(order), "pages are not newest first"

    waiting = _all(client, WorkflowSearch(status=("RUNNING",), step="approve", limit=1000))
    assert {item["workflow_id"] for item in waiting} == {
        _wid(i) for i in range(WORKFLOWS) if not _approved(i)
    }
    ranged = _all(
        client,
        WorkflowSearch(
            where=(AttributeFilter("total", ">=", "100"), AttributeFilter("total", "<", "120"))
        ),
    )
    assert {item["workflow_id"] for item in ranged} == {_wid(i) for i in range(100, 120)}

    described = client.describe(shop_saga.saga, _wid(7))
    assert described["status"] == "RUNNING"
    assert described["waits"] == ["approve"]
    assert described["input"] == {"customer_id": "c-7", "total": 7}
    assert described["results"] == {"reserve": 14}
    assert described["attributes"] == {"customer_id": "c-7", "total": 7}
    assert described["parked"] is False
    assert client.status(shop_saga.saga, _wid(8)).status.value == "COMPLETED"
    assert client.query(shop_saga.saga, _wid(9), "summary") == {
        "customer": "c-9", "reserved": 18, "status": "RUNNING",
    }  # fmt: skip
    with pytest.raises(QueryFailedError, match="always fails"):
        client.query(shop_saga.saga, _wid(9), "broken")
    with pytest.raises(QueryFailedError, match="no such workflow") as unknown:
        client.query(shop_saga.saga, "no-such-order", "summary")
    assert unknown.value.status == 404


def _sagas(kafka: KafkaSettings, *arguments: str, exit_code: int = 0) -> str:
    """What ``sagas ARGUMENTS`` printed: its output, or its error when it is to fail."""
    result = sagas(kafka, *arguments)
    assert result.exit_code == exit_code, result.output
    return result.stdout if exit_code == 0 else result.stderr


def _check_commands(kafka: KafkaSettings, approved_at: datetime) -> None:
    """`sagas list`, `describe` and `query` answer what the client does."""

    def listed(*filters: str) -> set[str]:
        lines = _sagas(kafka, "list", "vis-shop", *filters, "--limit", "1000", "--output", "json")
        return {json.loads(line)["workflow_id"] for line in lines.splitlines()}

    c4 = ("--status", "COMPLETED", "--where", "customer_id=c-4")
    ended = {_wid(i) for i in range(WORKFLOWS) if _approved(i) and i % CUSTOMERS == 4}
    # Every one of them ended once approved, none before.
    assert listed(*c4, "--ended-since", approved_at.isoformat()) == ended
    assert listed(*c4, "--ended-until", approved_at.isoformat()) == set()
    table = _sagas(kafka, "list", "vis-shop", "--where", "total=7").splitlines()
    header, row = table
    assert header.startswith("WORKFLOW")
    assert row.split()[:2] == [_wid(7), "RUNNING"]
    assert "customer_id=c-7" in row
    ranged = listed("--where", "total>=100", "--where", "total<103")
    assert ranged == {_wid(i) for i in (100, 101, 102)}
    described = json.loads(_sagas(kafka, "describe", "vis-shop", _wid(7)))
    assert (described["status"], described["waits"]) == ("RUNNING", ["approve"])
    summary = json.loads(_sagas(kafka, "query", "vis-shop", _wid(9), "summary"))
    assert summary == {"customer": "c-9", "reserved": 18, "status": "RUNNING"}
    for unknown in (("describe", "vis-shop", "no-such-order"),
                    ("query", "vis-shop", "no-such-order", "summary")):  # fmt: skip
        said = _sagas(kafka, *unknown, exit_code=ExitCode.NOT_FOUND)
        assert said.strip() == "Error: no such workflow (saga=vis-shop, workflow_id=no-such-order)"


def _wait_for_counts(client: SagaClient, status: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = len(_all(client, WorkflowSearch(status=(status,), limit=1000)))
        if found >= count:
            return
        assert time.monotonic() < deadline, f"{found} of {count} are {status}"
        time.sleep(0.5)


@pytest.mark.timeout(240)
def test_list_describe_and_query_across_a_restart_and_a_rebalance(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    with deployed(VERSIONS, kafka) as shop:
        client = shop.client
        first = shop.processor(tmp_path / "a", "a")
        for i in range(WORKFLOWS):
            order = shop_saga.Order(customer_id=f"c-{i % CUSTOMERS}", total=i)
            client.start(shop_saga.saga, order, workflow_id=_wid(i), wait=False)
        client.flush()
        _wait_for_counts(client, "RUNNING", WORKFLOWS, 90)
        deadline = time.monotonic() + 60
        while len(_all(client, WorkflowSearch(step="approve", limit=1000))) < WORKFLOWS:
            assert time.monotonic() < deadline, "not every workflow reached its wait"
            time.sleep(0.5)
        approved_at = datetime.now(UTC)
        for i in range(0, WORKFLOWS, 2):
            client.signal(shop_saga.saga, _wid(i), "approve", check=False)
        client.flush()
        _wait_for_counts(client, "COMPLETED", WORKFLOWS // 2, 60)
        _check_answers(client)
        _check_commands(kafka, approved_at)

        shop.stop(first)
        shop.processor(tmp_path / "a", "a")
        _check_answers(client)

        shop.processor(tmp_path / "b", "b", ready_within=120)
        deadline = time.monotonic() + 60
        while len(client.queries.endpoints(shop_saga.saga.name, refresh=True)) < 2:
            assert time.monotonic() < deadline, "the second processor never announced itself"
            time.sleep(0.5)
        _check_answers(client)


@pytest.mark.timeout(120)
def test_a_list_with_no_processor_running_says_what_to_start(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    provision(VERSIONS, kafka)
    said = _sagas(kafka, "list", "vis-shop", exit_code=ExitCode.ERROR)
    assert said.strip() == (
        "Error: no processor of saga 'vis-shop' announces a query endpoint: "
        "start its processor (sagas worker MODULE:SAGA)"
    )


@pytest.mark.timeout(120)
def test_a_request_without_the_token_is_refused(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    with deployed(VERSIONS, kafka, steps=False) as shop:
        query = QuerySettings(host="0.0.0.0", token="s3cret")
        runner = shop.processor(tmp_path, "t", query=query)
        assert runner.processor is not None
        assert runner.processor.query_endpoint is not None
        url = runner.processor.query_endpoint.url.replace("0.0.0.0", "127.0.0.1")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/v1/health", timeout=10)
        with refused.value:  # an HTTPError holds the response open
            assert refused.value.code == 401
        with_token = urllib.request.Request(
            url + "/v1/health", headers={"Authorization": "Bearer s3cret"}
        )
        with urllib.request.urlopen(with_token, timeout=10) as answer:
            assert answer.status == 200


@pytest.mark.timeout(270)
def test_retention_removes_ended_workflows_everywhere(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    names = TopicNames(VERSIONS.name, kafka.topic_prefix)
    with deployed(VERSIONS, kafka) as shop:
        _compact_at_once(kafka, names.status)
        processor = shop.processor(tmp_path / "p", "p", retention=timedelta(seconds=3))
        client = shop.client
        count = 40
        ended = _approve_half(client, count, "c-1")
        kept = {_wid(i) for i in range(count // 2, count)}
        deadline = time.monotonic() + 60
        while True:
            listed = {str(i["workflow_id"]) for i in _all(client, WorkflowSearch(limit=1000))}
            if listed == kept:
                break
            assert time.monotonic() < deadline, f"still listed: {sorted(listed - kept)}"
            time.sleep(0.5)
        with pytest.raises(Exception, match="no such workflow"):
            client.describe(shop_saga.saga, _wid(0))
        assert processor.processor is not None
        endpoint = processor.processor.query_endpoint
        assert endpoint is not None
        for partition in endpoint.gates.served():
            with endpoint.gates.reading(partition) as reader:
                indexed = [
                    key for key, _ in reader.iter_range(START_INDEX, prefix_end(START_INDEX))
                ]
                for key in indexed:
                    assert key[len(START_INDEX) + 8 :].decode() in kept
                everything = [key for key, _ in reader.iter_range(b"\0")]
                for key in everything:
                    assert not any(w.encode() in key for w in ended), key
        # Produce a record now and then so the active segment rolls and the cleaner runs.
        deadline = time.monotonic() + 150
        while True:
            records = read_topic(kafka.client_config(), names.status)
            seen = {r.key.decode() for r in records if r.key is not None and r.value is not None}
            if not seen & ended:
                break
            assert time.monotonic() < deadline, f"status records left: {sorted(seen & ended)}"
            for wid in kept:  # every partition holds some: each active segment rolls
                # By bare name, so the processor records the unknown signal's rejection
                # (a status record) rather than the client refusing it.
                client.signal(shop_saga.saga.name, wid, "nudge", check=False)
            client.flush()
            time.sleep(2)
        assert kept <= seen


@pytest.mark.timeout(180)
def test_a_replay_leaves_out_what_retention_removed_and_rebuilds_the_index(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    count = 10
    ended = {_wid(i) for i in range(count // 2)}
    kept = {_wid(i) for i in range(count // 2, count)}
    with deployed(VERSIONS, kafka) as shop:
        client = shop.client
        processor = shop.processor(tmp_path / "p", "p", retention=timedelta(seconds=2))
        assert _approve_half(client, count, "c-9") == ended
        deadline = time.monotonic() + 60
        while {str(i["workflow_id"]) for i in _all(client, WorkflowSearch(limit=100))} != kept:
            assert time.monotonic() < deadline, "retention did not remove the ended workflows"
            time.sleep(0.3)
        shop.stop(processor)

        # The state and changelog are rebuilt from the event log, which still holds the
        # removed workflows' events: they stay removed, and the index is whole again.
        replayed = _sagas(kafka,
            "replay", "tests.integration.visibility.shop_saga:saga", "--retention", "2",
            "--state-dir", str(tmp_path / "p"), "--output", "json",
        )  # fmt: skip
        rebuilt = sum(p["workflows"] for p in json.loads(replayed)["partitions"])
        assert rebuilt == len(kept)
        shop.processor(tmp_path / "p", "p", retention=timedelta(seconds=2))
        listed = {str(i["workflow_id"]) for i in _all(client, WorkflowSearch(limit=100))}
        assert listed == kept
        waiting = _all(client, WorkflowSearch(step="approve", limit=100))
        assert {str(i["workflow_id"]) for i in waiting} == kept
        with pytest.raises(Exception, match="no such workflow"):
            client.describe(shop_saga.saga, sorted(ended)[0])
