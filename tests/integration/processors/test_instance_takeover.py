"""Without ``--instance-id``, a SIGKILLed processor and worker restarted from the same state
directory take their partitions back at once: each keeps an id in its state directory and
rejoins its group as the same static member.

Before, the restarted processes joined as new members and the group waited out the dead
ones' session timeout (45 s) before handing their partitions over.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sagas.client import SagaClient
from sagas.config import KafkaSettings
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants import flaky_order

SAGA_REF = "tests.integration.participants.flaky_order:saga"
_REPO = Path(__file__).resolve().parents[3]
_ID_LINE = re.compile(r"(processor|steps) instance id (\S+) \(from (\S+)\)")
RESUME_WITHIN_S = 10.0


def _quick_workflow(prefix: str) -> str:
    """A workflow id whose saga runs every step once, with no retry backoff to wait for."""
    for n in range(1000):
        wid = f"{prefix}-{n}"
        if all(attempt == 1 for _, _, attempt in flaky_order.predict(wid).schedule):
            return wid
    raise AssertionError("no workflow id without retries among the first 1000")


def _ids_in(log: Path, deadline_s: float = 60.0) -> dict[str, tuple[str, str]]:
    """Role -> (instance id, where it came from), as the process printed them at start."""
    deadline = time.monotonic() + deadline_s
    while True:
        found = {m[1]: (m[2], m[3]) for m in _ID_LINE.finditer(log.read_text(errors="replace"))}
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.timeout(240)
def test_a_sigkilled_processor_and_worker_resume_at_once_without_being_given_an_id(
    flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    logs = {role: tmp_path / f"{role}-{{}}.log" for role in ("processor", "steps")}
    client = SagaClient(flaky_kafka)
    first = {r: WorkerProcess(SAGA_REF, flaky_kafka, role=r, state_dir=state,
                              log_path=Path(str(logs[r]).format(1))) for r in logs}  # fmt: skip
    second = {r: WorkerProcess(SAGA_REF, flaky_kafka, role=r, state_dir=state,
                               log_path=Path(str(logs[r]).format(2))) for r in logs}  # fmt: skip
    running: list[WorkerProcess] = []
    try:
        for process in first.values():
            process.start()
            running.append(process)
        warmup = client.start(flaky_order.saga, flaky_order.order_input("warmup"),
                              workflow_id=_quick_workflow("warmup"))  # fmt: skip
        assert client.result(flaky_order.saga, warmup, timeout=120).status.is_final

        # A second process on the same state directory is refused with one clear line.
        clash = subprocess.run(
            first["processor"].command(), cwd=_REPO, capture_output=True, text=True, timeout=120
        )
        assert clash.returncode != 0
        assert "is in use by another processor process" in clash.stderr, clash.stderr
        assert "Traceback" not in clash.stderr, clash.stderr

        for process in first.values():
            process.kill()
        running.clear()
        for process in second.values():
            process.start()
            running.append(process)
        restarted = time.monotonic()
        wid = client.start(flaky_order.saga, flaky_order.order_input("after"),
                           workflow_id=_quick_workflow("after"))  # fmt: skip
        record = client.result(flaky_order.saga, wid, timeout=120)
        took = time.monotonic() - restarted
    finally:
        for process in running:
            process.stop()
        client.close()
    assert record.status.is_final
    assert took < RESUME_WITHIN_S, f"the restarted processes took {took:.1f} s to run a saga"

    before = {r: _ids_in(p.log_path)[r] for r, p in first.items()}
    after = {r: _ids_in(p.log_path)[r] for r, p in second.items()}
    assert before == after, (before, after)
    assert before["processor"][0] != before["steps"][0]
    for instance, source in before.values():
        assert Path(source).read_text().strip() == instance
        assert Path(source).is_relative_to(state)


def test_the_derived_id_is_printed_by_a_worker_run_on_its_own(
    flaky_kafka: KafkaSettings, tmp_path: Path
) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "sagas.cli", "worker", SAGA_REF, "--role", "steps",
         "--queue", "payments", "--state-dir", str(tmp_path), "--no-create-topics",
         "--bootstrap-servers", flaky_kafka.bootstrap_servers,
         "--topic-prefix", flaky_kafka.topic_prefix],
        cwd=_REPO, stderr=subprocess.PIPE, text=True,
    ) as worker:  # fmt: skip
        try:
            assert worker.stderr is not None
            line = ""
            deadline = time.monotonic() + 60
            while "instance id" not in line and time.monotonic() < deadline:
                line = worker.stderr.readline()
        finally:
            worker.terminate()
            worker.wait(60)
    found = _ID_LINE.search(line)
    assert found is not None, line
    assert found[1] == "steps"
    assert "-steps-" in found[2]
    assert found[3] == str(
        tmp_path / f"{flaky_kafka.topic_prefix}queue.payments.workers/instance-id"
    )
