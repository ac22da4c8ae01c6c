"""Continue-as-new, signal-with-start, updates and a child undone by its own compensations,
on the real broker: a worker per saga on topics of their own, the client over Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from examples import bundle_saga, delivery_saga, subscription_saga
from processors.runner import WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas import Saga, UpdateRejectedError
from sagas.client import SagaClient
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import EventType, WorkflowStatus

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

Deploy = Callable[..., tuple[KafkaSettings, SagaClient]]


@pytest.fixture
def deploy(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[Deploy]:
    """Provision sagas under one topic prefix, run a worker for each, and give a client."""
    runners: list[WorkerRunner] = []
    clients: list[SagaClient] = []

    def make(*sagas: Saga[Any]) -> tuple[KafkaSettings, SagaClient]:
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
        for saga in sagas:
            versions = compile_versions(saga)
            provision(versions, kafka)
            runner = WorkerRunner(
                versions,
                kafka,
                processor_settings=ProcessorSettings(state_dir=tmp_path / saga.name),
            ).start()
            runners.append(runner)
        for runner in runners:
            runner.wait_ready()
        client = SagaClient(kafka)
        clients.append(client)
        return kafka, client

    yield make
    for client in clients:
        client.close()
    for runner in runners:
        runner.stop()
    for runner in runners:
        runner.raise_errors()


def test_a_subscription_continues_as_new_each_period(deploy: Deploy) -> None:
    saga = subscription_saga.subscription_saga(period=timedelta(seconds=1))
    kafka, client = deploy(saga)
    start = subscription_saga.Period(subscription_id="k1", monthly_cents=300, last_period=3)
    wid = client.start(saga, start, workflow_id="sub-k1")
    record = client.result(saga, wid, timeout=90)
    assert record.status is WorkflowStatus.COMPLETED, record
    assert record.previous_run_id is not None
    assert record.run_id not in (None, record.previous_run_id)
    history = read_history(kafka, saga.name, wid)
    types = [e.type for e in history]
    assert types.count(EventType.CONTINUED_AS_NEW) == 2
    assert types.count(EventType.STARTED) == 3
    described = client.describe(saga, wid)
    assert described["previous_run_id"] == record.previous_run_id
    assert len(described["steps"]) == 1  # the last run's step only: the state stays bounded
    # The runs it continued from stay describable, latest first, linked run to run, until
    # the retention of ended workflows removes them.
    runs = described["runs"]
    assert [run["input"]["period"] for run in runs] == [2, 1]
    assert runs[0]["run_id"] == record.previous_run_id
    assert runs[0]["previous_run_id"] == runs[1]["run_id"]
    assert runs[1]["previous_run_id"] is None
    assert {run["status"] for run in runs} == {"CONTINUED_AS_NEW"}
    assert [run["results"]["bill_period"] for run in runs] == [300, 300]
    assert runs[0]["ended_ms"] >= runs[1]["ended_ms"] >= runs[1]["started_ms"]
    listed = client.list(saga)
    assert [item["workflow_id"] for item in listed.items] == [wid]  # listed once, not per run


def test_signal_with_start_starts_and_signals_in_one_record(deploy: Deploy) -> None:
    saga = subscription_saga.subscription_saga(period=timedelta(minutes=5))
    kafka, client = deploy(saga)
    start = subscription_saga.Period(subscription_id="k2", monthly_cents=1)
    cancel = subscription_saga.Cancel(reason="never mind")
    wid = client.signal_with_start(saga, "sub-k2", start, "cancel", cancel)
    record = client.result(saga, wid, timeout=60)
    assert record.status is WorkflowStatus.COMPLETED, record
    types = [e.type for e in read_history(kafka, saga.name, wid)]
    assert types[:3] == [
        EventType.SIGNAL_WITH_START,
        EventType.STARTED,
        EventType.SIGNAL_RECEIVED,
    ]


def test_an_update_changes_the_address_before_shipping_and_is_refused_after(
    deploy: Deploy,
) -> None:
    _, client = deploy(delivery_saga.saga)
    home = delivery_saga.Address(street="1 Old Road", postcode="11111")
    new = delivery_saga.Address(street="2 New Street", postcode="22222")
    order = delivery_saga.Delivery(order_id="k3", address=home)
    wid = client.start(delivery_saga.saga, order, workflow_id="del-k3")
    assert client.update(delivery_saga.saga, wid, "change_address", new, update_id="u-k3") == (
        "2 New Street, 22222"
    )
    # Sent again under the same id: answered again, applied once.
    again = client.update(delivery_saga.saga, wid, "change_address", home, update_id="u-k3")
    assert again == "2 New Street, 22222"
    with pytest.raises(UpdateRejectedError, match="postcode"):
        client.update(delivery_saga.saga, wid, "change_address", {"street": "x", "postcode": ""})
    client.signal(delivery_saga.saga, wid, "packed")
    record = client.result(delivery_saga.saga, wid, timeout=60)
    assert record.status is WorkflowStatus.COMPLETED, record
    assert delivery_saga.SHIPMENTS[f"{wid}/ship/action"] == "2 New Street, 22222"
    with pytest.raises(UpdateRejectedError) as late:
        client.update(delivery_saga.saga, wid, "change_address", new)
    assert late.value.reason == "WorkflowEnded"


def test_a_completed_child_is_undone_by_its_own_compensations(deploy: Deploy) -> None:
    kafka, client = deploy(bundle_saga.saga, bundle_saga.payment)
    bundle_saga.OUT_OF_STOCK.add("k-rare")
    order = bundle_saga.Bundle(order_id="k4", amount_cents=5, sku="k-rare")
    wid = client.start(bundle_saga.saga, order, workflow_id="bun-k4")
    record = client.result(bundle_saga.saga, wid, timeout=90)
    assert record.status is WorkflowStatus.COMPENSATED, record
    assert [x for x in bundle_saga.LEDGER if x.endswith("k4")] == [
        "authorize k4",
        "capture k4",
        "refund k4",
        "void k4",
    ]
    # The child's own log: completed, asked to undo itself, then compensated latest first.
    child = read_history(kafka, "payment", f"{wid}/pay")
    undone = [e.step for e in child if e.type is EventType.COMPENSATION_SUCCEEDED]
    assert undone == ["capture", "authorize"]
    types = [e.type for e in child]
    assert types.index(EventType.COMPLETED) < types.index(EventType.COMPENSATE_REQUESTED)
    assert types[-1] is EventType.COMPENSATED


def test_a_parent_whose_child_saga_has_no_processor_says_so(
    deploy: Deploy, kafka_bootstrap: str
) -> None:
    parent = Saga("lonely", input=bundle_saga.Bundle, version=1)
    parent.child(
        "pay",
        saga=bundle_saga.payment,
        input=lambda view: bundle_saga.Payment(order_id="k5", amount_cents=1),
        start_timeout=timedelta(seconds=2),
    )
    kafka, client = deploy(parent)
    provision(compile_versions(bundle_saga.payment), kafka)  # topics, but no processor
    order = bundle_saga.Bundle(order_id="k5", amount_cents=1, sku="x")
    wid = client.start(parent, order, workflow_id="lonely-k5")
    expected = "pay (waiting for child saga payment: no processor answers)"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        record = client.status(parent, wid)
        if expected in record.current_steps:
            break
        time.sleep(0.5)
    assert expected in record.current_steps, record
    assert record.status is WorkflowStatus.RUNNING


def _sagas(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "SAGAS_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
    env.pop("SAGAS_SCHEMA_REGISTRY_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "sagas.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


def test_the_cli_starts_with_a_signal_and_applies_an_update(deploy: Deploy) -> None:
    kafka, client = deploy(delivery_saga.saga)
    ref = "examples.delivery_saga:saga"
    order = '{"order_id": "k6", "address": {"street": "1 Old Road", "postcode": "11111"}}'
    started = _sagas(kafka, "start", ref, "--id", "del-k6", "--input", order, "--signal", "nope")
    assert started.returncode != 0
    assert "no signal 'nope'" in started.stderr
    assert len(started.stderr.strip().splitlines()) == 1, started.stderr  # one line, no trace
    new = '{"street": "2 New Street", "postcode": "22222"}'
    started = _sagas(kafka, "start", ref, "--id", "del-k6", "--input", order)
    assert started.returncode == 0, started.stderr
    updated = _sagas(kafka, "update", ref, "del-k6", "change_address", "--payload", new)
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout) == "2 New Street, 22222"
    refused = _sagas(kafka, "update", ref, "del-k6", "change_address", "--payload", "{}")
    assert refused.returncode != 0
    assert "street: Field required; postcode: Field required" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    signalled = _sagas(
        kafka, "start", ref, "--id", "del-k6", "--input", order, "--signal", "packed"
    )
    assert signalled.returncode == 0, signalled.stderr
    record = client.result(delivery_saga.saga, "del-k6", timeout=60)
    assert record.status is WorkflowStatus.COMPLETED, record
