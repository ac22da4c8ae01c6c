"""The saga processor SIGKILLed across its steps' deadlines while the participant keeps
answering: once restarted, the answers already in the log win over the timers that fell
due while it was down, so no step times out and no effect runs twice. Steps that really
are too slow still time out, while new workflows keep arriving on every partition.
"""

from __future__ import annotations

import threading
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
SLOW = 5
SLOW_DELAY_MS = 5000
"""Longer than the timeout: each of the two attempts of these times out."""
SAGA_REF = "tests.integration.participants.punctual_saga:saga"


def _wait_for_ledger(path: Path, lines: int, steps: WorkerProcess, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (count := ledger.count_lines(path)) < lines and time.monotonic() < deadline:
        assert steps.running, f"the step worker exited by itself, see {steps.log_path}"
        time.sleep(0.02)
    return count


def _keep_starting(kafka: KafkaSettings, stop: threading.Event, started: list[str]) -> None:
    """Start a quick workflow every 100 ms until ``stop``: a steady stream of new records."""
    client = SagaClient(kafka)
    try:
        while not stop.wait(0.1):
            wid = f"stream-{len(started):04d}"
            delivery = punctual_saga.Delivery(parcel=wid, delay_ms=50)
            client.start(punctual_saga.saga, delivery, workflow_id=wid, wait=False)
            started.append(wid)
        client.flush()
    finally:
        client.close()


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
    slow_ids = [f"slow-{n}" for n in range(SLOW)]
    streamed: list[str] = []
    stop_stream = threading.Event()
    stream = threading.Thread(target=_keep_starting, args=(kafka, stop_stream, streamed))
    client = SagaClient(kafka)
    try:
        for wid in workflow_ids + slow_ids:
            delay = SLOW_DELAY_MS if wid in slow_ids else DELAY_MS
            delivery = punctual_saga.Delivery(parcel=wid, delay_ms=delay)
            client.start(punctual_saga.saga, delivery, workflow_id=wid, wait=False)
        client.flush()
        # The first effect means the commands went out DELAY_MS ago: kill the processor
        # while the participant is still at work on them.
        assert _wait_for_ledger(ledger_file, 1, steps, timeout=60) >= 1, "no step ever ran"
        processor.kill()
        killed_at = time.monotonic()
        stream.start()
        # Every deadline of a step dispatched before the kill passes during the outage,
        # and the answers land in the log meanwhile.
        outage = punctual_saga.STEP_TIMEOUT.total_seconds() + 1.5
        _wait_for_ledger(ledger_file, SAGAS, steps, timeout=outage)
        answered = sum(1 for a in ledger.read(ledger_file) if a.workflow_id in workflow_ids)
        time.sleep(max(0.0, killed_at + outage - time.monotonic()))
        processor.start()
        outcomes = _wait_until_final(client, workflow_ids, timeout=60)
        slow_outcomes = _wait_until_final(client, slow_ids, timeout=60)
        stop_stream.set()
        stream.join(30)
        stream_outcomes = _wait_until_final(client, streamed, timeout=60)
    finally:
        stop_stream.set()
        if stream.is_alive():
            stream.join(30)
        codes = {role: process.stop() for role, process in processes.items()}
        client.close()
    assert codes == {"processor": 0, "steps": 0}
    assert answered >= SAGAS // 2, f"only {answered} answers landed during the outage"

    names = TopicNames(punctual_saga.SAGA_NAME, kafka.topic_prefix)
    events = events_by_workflow(read_topic(kafka.client_config(), names.events))
    late = Counter(
        event.type.value
        for wid, history in events.items()
        if wid not in slow_ids
        for event in history
        if event.type in (EventType.STEP_TIMED_OUT, EventType.ANSWER_IGNORED)
    )
    effects = ledger.view([a for a in ledger.read(ledger_file) if a.workflow_id not in slow_ids])
    ran_twice = sum(1 for count in effects.applications.values() if count > 1)
    assert (late, ran_twice) == (Counter(), 0), (
        f"{answered} answers were in the log before their deadline; after the restart "
        f"{dict(late)} and {ran_twice} effects ran twice"
    )
    assert outcomes == Counter({WorkflowStatus.COMPLETED.value: SAGAS})
    # Timers did fire after the restart, new records notwithstanding: each slow attempt
    # ended unanswered in time (by the worker's own timeout or the deadline), and the
    # retry between them waited for its backoff timer.
    assert stream_outcomes == Counter({WorkflowStatus.COMPLETED.value: len(streamed)})
    assert slow_outcomes == Counter({WorkflowStatus.FAILED.value: SLOW})
    ended = (EventType.STEP_FAILED, EventType.STEP_TIMED_OUT, EventType.TIMER_FIRED)
    for wid in slow_ids:
        seen = [(e.type, e.attempt) for e in events[wid] if e.type in ended]
        assert (EventType.TIMER_FIRED, 0) in seen, (wid, seen)
        assert sorted({n for t, n in seen if t is not EventType.TIMER_FIRED}) == [1, 2], seen
