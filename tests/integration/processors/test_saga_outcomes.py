"""1,000 order sagas on the real broker, each step failing with a known probability."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from processors.runner import WorkerRunner
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from sagas.events import WorkflowStatus
from tests.integration.participants import flaky_order
from tests.integration.processors.saga_run_checks import (
    check_run,
    effects_of,
    events_by_workflow,
    read_topic,
    wait_until_final,
)
from topics.naming import TopicNames

SAGAS = 1000


@pytest.mark.timeout(240)
def test_every_saga_ends_as_its_failure_schedule_predicts(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    """Outcomes, attempts, compensation order and effects match the prediction exactly.

    The schedule mixes retry-then-succeed, non-retryable failures, exhausted retries of
    each step and compensations that exhaust theirs; the counts below make sure every
    kind of ending is really exercised by these workflow ids.
    """
    expected = {wid: flaky_order.predict(wid) for wid in (f"order-{i:04d}" for i in range(SAGAS))}
    endings = Counter((e.status, e.failed_step, e.failed_compensation) for e in expected.values())
    assert endings[WorkflowStatus.COMPLETED, None, None] > 500
    assert endings[WorkflowStatus.FAILED, "notify", None] > 10
    assert all(
        endings[WorkflowStatus.COMPENSATED, step, None] > 10 for step in ("charge", "reserve")
    )
    assert endings[WorkflowStatus.COMPENSATED, "ship", None] > 10
    # A compensation that exhausts its retries: FAILED, naming the step whose failure
    # started the compensation and the compensation that could not be done.
    failed_undo = Counter(
        (step, undo)
        for status, step, undo in endings.elements()
        if status is WorkflowStatus.FAILED and undo is not None
    )
    assert sum(n for (_, undo), n in failed_undo.items() if undo in ("charge", "reserve")) > 3
    assert all(step not in (None, undo) for step, undo in failed_undo)

    runner = WorkerRunner(
        flaky_versions, flaky_kafka, processor_settings=ProcessorSettings(state_dir=tmp_path)
    ).start()
    client = SagaClient(flaky_kafka)
    try:
        runner.wait_ready()
        for wid in expected:
            client.start(
                flaky_order.saga, flaky_order.order_input(wid), workflow_id=wid, wait=False
            )
        client.flush()
        statuses = wait_until_final(client, expected, timeout=150)
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()

    config = flaky_kafka.client_config()
    names = TopicNames(flaky_order.SAGA_NAME, flaky_kafka.topic_prefix)
    events = events_by_workflow(read_topic(config, names.events))
    check_run(expected, statuses, events, effects_of(ledger_file), each_attempt_once=True)
    assert read_topic(config, names.dlq) == []
