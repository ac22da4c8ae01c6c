"""The saga processor SIGKILLed across its steps' deadlines while the participant keeps
answering: once restarted, the answers already in the log win over the timers that fell
due while it was down, so no step times out and no effect runs twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from processors.runner import provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.events import EventType, WorkflowStatus
from sagas.versions import compile_versions
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants import ledger, punctual_saga
from tests.integration.processors.saga_run_checks import events_by_workflow, read_topic
from topics.naming import TopicNames

SAGAS = 200
DELAY_MS = 1500
"""How long the participant takes: well within the step's timeout of 4 s."""
SAGA_REF = "tests.integration.participants.punctual_saga:saga"


def _wait_for_ledger(path: Path, lines: int, steps: WorkerProcess, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (count := ledger.count_lines(path)) < lines and time.monotonic() < deadline:
        assert steps.running, f"the step worker exited by itself, see {steps.log_path}"
        time.sleep(0.02)
    return count


def _wait_until_final(client: SagaClient, workflow_ids: list[str], timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while True:
        statuses = client.statuses(punctual_saga.SAGA_NAME)
        ended = [w for w in workflow_ids if w in statuses and statuses[w].status.is_final]
        if len(ended) == len(workflow_ids) or time.monotonic() > deadline:
            return Counter(
                statuses[w].status.value if w in statuses else "missing" for w in workflow_ids
            )
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_answers_in_the_log_win_over_deadlines_that_passed_while_the_processor_was_down(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    ledger_file: Path,
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    provision(compile_versions(punctual_saga.saga), kafka)
    processes = {
        role: WorkerProcess(
            SAGA_REF,
            kafka,
            role=role,
            state_dir=tmp_path / "state",
            instance_id=unique_name(role),
            log_path=tmp_path / f"{role}.log",
        )
        for role in ("processor", "steps")
    }
    processor, steps = processes["processor"], processes["steps"]
    processor.start()
    steps.start()
    workflow_ids = [f"parcel-{n:03d}" for n in range(SAGAS)]
    client = SagaClient(kafka)
    try:
        for wid in workflow_ids:
            delivery = punctual_saga.Delivery(parcel=wid, delay_ms=DELAY_MS)
            client.start(punctual_saga.saga, delivery, workflow_id=wid, wait=False)
        client.flush()
        # The first effect means the commands went out DELAY_MS ago: kill the processor
        # while the participant is still at work on them.
        assert _wait_for_ledger(ledger_file, 1, steps, timeout=60) >= 1, "no step ever ran"
        processor.kill()
        killed_at = time.monotonic()
        # Every deadline of a step dispatched before the kill passes during the outage,
        # and the answers land in the log meanwhile.
        outage = punctual_saga.STEP_TIMEOUT.total_seconds() + 1.5
        answered = _wait_for_ledger(ledger_file, SAGAS, steps, timeout=outage)
        time.sleep(max(0.0, killed_at + outage - time.monotonic()))
        processor.start()
        outcomes = _wait_until_final(client, workflow_ids, timeout=60)
    finally:
        codes = {role: process.stop() for role, process in processes.items()}
        client.close()
    assert codes == {"processor": 0, "steps": 0}
    assert answered >= SAGAS // 2, f"only {answered} answers landed during the outage"

    names = TopicNames(punctual_saga.SAGA_NAME, kafka.topic_prefix)
    events = events_by_workflow(read_topic(kafka.client_config(), names.events))
    late = Counter(
        event.type.value
        for history in events.values()
        for event in history
        if event.type in (EventType.STEP_TIMED_OUT, EventType.ANSWER_IGNORED)
    )
    runs = ledger.view(ledger.read(ledger_file)).applications
    ran_twice = sum(1 for count in runs.values() if count > 1)
    assert (late, ran_twice) == (Counter(), 0), (
        f"{answered} answers were in the log before their deadline; after the restart "
        f"{dict(late)} and {ran_twice} effects ran twice"
    )
    assert outcomes == Counter({WorkflowStatus.COMPLETED.value: SAGAS})
