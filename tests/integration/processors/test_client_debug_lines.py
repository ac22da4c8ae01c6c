"""A processor whose Kafka clients log every group and fetch step (``SAGAS_LIBRDKAFKA_DEBUG``)
takes its partitions and runs sagas to the end.

Its assignment callback runs inside the consumer's poll; a client call there that clears
the poll's call state in confluent-kafka (``list_topics`` on that same consumer did) made
the next librdkafka line of the same poll abort the process (``CallState_get: Assertion
'cs != NULL' failed``). Broker failovers log many such lines; debug contexts log them
always, so the abort came at the first assignment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from processors.runner import provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from tests.chaos import chaos_saga
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants.ledger import LEDGER_ENV

SAGA_REF = "tests.chaos.chaos_saga:saga"
CHILD_SAGA_REF = "tests.chaos.chaos_saga:insurance"


@pytest.mark.timeout(180)
def test_a_processor_logging_librdkafka_debug_lines_runs_sagas_to_the_end(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LEDGER_ENV, str(tmp_path / "ledger.jsonl"))
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    provision(compile_versions(chaos_saga.saga), kafka)
    provision(compile_versions(chaos_saga.insurance), kafka)
    # Only the processor's clients log debug lines: the others are started without it.
    steps = WorkerProcess(SAGA_REF, kafka, role="steps", state_dir=tmp_path / "steps",
                          log_path=tmp_path / "steps.log")  # fmt: skip
    insurance = WorkerProcess(CHILD_SAGA_REF, kafka, role="all", state_dir=tmp_path / "ins",
                              log_path=tmp_path / "insurance.log")  # fmt: skip
    processor = WorkerProcess(SAGA_REF, kafka, role="processor", state_dir=tmp_path / "proc",
                              log_path=tmp_path / "processor.log")  # fmt: skip
    client = SagaClient(kafka)
    started = [f"trip-{n:03d}" for n in range(20)]
    try:
        steps.start()
        insurance.start()
        monkeypatch.setenv("SAGAS_LIBRDKAFKA_DEBUG", "cgrp,fetch")
        monkeypatch.setenv("SAGAS_LOG_LEVEL", "debug")
        processor.start()
        monkeypatch.delenv("SAGAS_LIBRDKAFKA_DEBUG")
        monkeypatch.delenv("SAGAS_LOG_LEVEL")
        for wid in started:
            client.start(chaos_saga.saga, chaos_saga.trip_input(wid, delay_ms=10),
                         workflow_id=wid, wait=False)  # fmt: skip
        client.flush(30)
        deadline = time.monotonic() + 120
        ended: set[str] = set()
        while processor.running and time.monotonic() < deadline and len(ended) < len(started):
            statuses = client.statuses(chaos_saga.SAGA_NAME)
            ended = {w for w in started if w in statuses and statuses[w].status.is_final}
            time.sleep(0.5)
        alive = processor.running
    finally:
        client.close()
        for process in (processor, steps, insurance):
            if process.running:
                process.stop()
    log = processor.log_path.read_text(errors="replace")
    assert alive, log[-3000:]
    assert "Fatal Python error" not in log, log[-3000:]
    assert "CGRP" in log or "FETCH" in log, "the processor logged no debug line"
    assert ended == set(started), sorted(set(started) - ended)
