"""``sagas worker MODULE`` serves every version the module declares, side by side: one
worker process runs a version-1 workflow and a version-2 workflow (derived from version 1)
at the same time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from examples.return_saga import Refund, ReturnInput, v1, v2
from sagas.client import SagaClient
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.events import EventType, WorkflowStatus

_REPO = Path(__file__).resolve().parents[3]


def _steps_succeeded(kafka: KafkaSettings, wid: str) -> list[str]:
    return [
        e.step
        for e in read_history(kafka, "returns", wid)
        if e.type is EventType.STEP_SUCCEEDED and e.step is not None
    ]


@pytest.mark.timeout(240)
def test_a_worker_pointed_at_the_module_serves_version_1_and_version_2_at_once(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sagas.cli", "worker", "examples.return_saga",
             "--store", "memory", "--state-dir", str(tmp_path / "state"),
             "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix],
            cwd=_REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "ready: partitions assigned and restored" not in log_path.read_text():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        assert "starting saga 'returns' (versions 1, 2)" in log_path.read_text()

        with SagaClient(kafka) as client:
            ret = ReturnInput(return_id="r-7", customer_email="bo@example.com", amount_cents=900)
            old = client.start(v1, ret, workflow_id="return-on-v1", version=1)
            new = client.start(v2, ret.model_copy(update={"store_credit": True}),
                               workflow_id="return-on-v2")  # fmt: skip
            old_record = client.result("returns", old, timeout=90)
            new_record = client.result("returns", new, timeout=90)
    finally:
        worker.terminate()
        worker.wait(60)

    assert (old_record.status, old_record.version) == (WorkflowStatus.COMPLETED, 1), old_record
    assert (new_record.status, new_record.version) == (WorkflowStatus.COMPLETED, 2), new_record
    assert _steps_succeeded(kafka, old) == ["book_pickup", "refund_payment", "notify_customer"]
    assert _steps_succeeded(kafka, new) == ["book_pickup", "hold_restock_slot", "refund_payment"]
    refund = next(
        e.payload
        for e in read_history(kafka, "returns", new)
        if e.type is EventType.STEP_SUCCEEDED and e.step == "refund_payment"
    )
    assert refund is not None
    assert Refund.model_validate_json(refund) == Refund(
        refund_id="sc-r-7", amount_cents=990, method="credit"
    )
