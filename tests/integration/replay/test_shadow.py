"""Shadow replay reports exactly the workflows a candidate definition would decide differently."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from processors.runner import Role, WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from tests.integration.replay import shadow_sagas
from tests.integration.replay.conftest import run_cli

MODULE = "tests.integration.replay.shadow_sagas"
REFUSED = {f"refused-{i}" for i in range(3)}
RETRIED = {f"retried-{i}" for i in range(4)}
PLAIN = {f"plain-{i}" for i in range(5)}


@pytest.fixture(scope="module")
def recorded_log(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> KafkaSettings:
    """A log of the base saga where every workflow has ended: some refused, some retried."""
    import uuid

    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"shadow-{uuid.uuid4().hex[:8]}."
    )
    versions = compile_versions(shadow_sagas.saga)
    provision(versions, kafka)
    state_dir: Path = tmp_path_factory.mktemp("shadow-state")
    runner = WorkerRunner(
        versions, kafka, role=Role.ALL, processor_settings=ProcessorSettings(state_dir=state_dir)
    ).start()
    client = SagaClient(kafka)
    try:
        runner.wait_ready()
        orders = {
            **{w: shadow_sagas.Order(order_id=w, refuse_reserve=True) for w in REFUSED},
            **{w: shadow_sagas.Order(order_id=w, charge_fails_once=True) for w in RETRIED},
            **{w: shadow_sagas.Order(order_id=w) for w in PLAIN},
        }
        for wid, order in orders.items():
            client.start(shadow_sagas.saga, order, workflow_id=wid, wait=False)
        for wid in orders:
            assert client.result(shadow_sagas.SAGA_NAME, wid, 60).status.is_final
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()
    return kafka


def _shadow(kafka: KafkaSettings, candidate: str) -> tuple[int, dict[str, object]]:
    result = run_cli(kafka, "replay", "--shadow", f"{MODULE}:{candidate}", "--output", "json")
    return result.exit_code, json.loads(result.stdout)


def _group_names(kafka: KafkaSettings) -> set[str]:
    admin = AdminClient(kafka.client_config())
    listed = admin.list_consumer_groups(request_timeout=10).result()
    # The broker is shared: only the groups named after this log's topics count.
    return {g.group_id for g in listed.valid if kafka.topic_prefix in g.group_id}


def test_the_same_definition_differs_nowhere_and_passes(recorded_log: KafkaSettings) -> None:
    groups = _group_names(recorded_log)
    code, report = _shadow(recorded_log, "same")
    assert (code, report["differences"]) == (0, [])
    assert report["workflows"] == len(REFUSED | RETRIED | PLAIN)
    assert _group_names(recorded_log) == groups, "shadow replay made a consumer group"


def test_a_changed_retry_policy_differs_only_where_a_retry_was_taken(
    recorded_log: KafkaSettings,
) -> None:
    code, report = _shadow(recorded_log, "slower_retry")
    assert code == 1
    differences = report["differences"]
    assert isinstance(differences, list)
    assert {d["workflow_id"] for d in differences} == RETRIED
    assert all(d["recorded"]["type"] == "retry_scheduled" for d in differences)


def test_an_extra_step_differs_only_where_the_workflow_got_past_the_first_step(
    recorded_log: KafkaSettings,
) -> None:
    code, report = _shadow(recorded_log, "extra_step")
    assert code == 1
    differences = report["differences"]
    assert isinstance(differences, list)
    assert {d["workflow_id"] for d in differences} == RETRIED | PLAIN
    first = differences[0]
    assert first["recorded"]["step"] == "charge"
    assert first["candidate"]["step"] == "check_fraud"


def test_text_output_names_each_differing_workflow(
    recorded_log: KafkaSettings, unique_name: Callable[[str], str]
) -> None:
    result = run_cli(recorded_log, "replay", "--shadow", f"{MODULE}:slower_retry")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines[:-1]) == sorted(RETRIED)
    everyone = len(REFUSED | RETRIED | PLAIN)
    assert lines[-1] == f"{len(RETRIED)} of {everyone} workflow(s) would be decided differently"


def test_history_jsonl_is_what_the_test_kit_replays(recorded_log: KafkaSettings) -> None:
    from sagas.testing import HistoryMismatchError, load_history, replay_history

    result = run_cli(
        recorded_log, "history", shadow_sagas.SAGA_NAME, "retried-0", "--output", "jsonl"
    )
    assert result.exit_code == 0, result.output
    events = load_history(result.stdout)
    assert any(e.type.value == "retry_scheduled" for e in events)
    assert replay_history(shadow_sagas.saga, events).status.value == "COMPLETED"
    with pytest.raises(HistoryMismatchError):
        replay_history(shadow_sagas.slower_retry[0], events)
