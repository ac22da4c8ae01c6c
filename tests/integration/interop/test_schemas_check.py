"""``sagas schemas check`` against a real registry: a CI gate for changed step contracts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.interop.test_participants import REPO

CHANGED = """
from datetime import timedelta
from pydantic import BaseModel
from sagas import Saga, StepContext, StepKind


class PaymentInput(BaseModel):
    order_id: str
    amount_cents: int
    currency: str = "EUR"


class Charge(BaseModel):
    charge_id: str
    amount_cents: int
    captured: bool
    {change}


saga = Saga("payment", input=PaymentInput, version={version})


@saga.step(kind=StepKind.PIVOT, timeout=timedelta(minutes=2), queue="payments")
def charge(ctx: StepContext[PaymentInput]) -> Charge:
    raise NotImplementedError
"""


@pytest.mark.timeout(180)
def test_check_passes_a_compatible_change_and_fails_an_incompatible_one(
    kafka_bootstrap: str, schema_registry: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("") + "."
    env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": kafka_bootstrap, "SAGAS_TOPIC_PREFIX": prefix,
           "SAGAS_SCHEMA_REGISTRY_URL": schema_registry,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}  # fmt: skip

    def sagas(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sagas.cli", *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
        )  # fmt: skip

    created = sagas("topics", "create", "tests.integration.interop.payment_saga:saga")
    assert created.returncode == 0, created.stderr
    # Version 1 changed under the workflows running on it: only a compatible change passes.
    compatible_v1 = CHANGED.format(change="note: str | None = None", version=1)
    (tmp_path / "payment_compatible.py").write_text(compatible_v1)
    (tmp_path / "payment_breaking.py").write_text(
        CHANGED.format(change="refund_policy: str", version=1)
    )
    # The same change as a new version has subjects of its own, beside version 1's.
    (tmp_path / "payment_v2.py").write_text(CHANGED.format(change="refund_policy: str", version=2))

    compatible = sagas("schemas", "check", "payment_compatible:saga", "--output", "json")
    assert compatible.returncode == 0, compatible.stdout + compatible.stderr
    assert '"compatible": true' in compatible.stdout

    breaking = sagas("schemas", "check", "payment_breaking:saga")
    assert breaking.returncode == 3, breaking.stdout + breaking.stderr
    assert f"BREAKS   {prefix}payment.v1.step.charge.result-value" in breaking.stdout
    assert f"ok       {prefix}payment.v1.step.charge.input-value" in breaking.stdout

    version_2 = sagas("schemas", "check", "payment_v2:saga")
    assert version_2.returncode == 0, version_2.stdout + version_2.stderr
    assert f"{prefix}payment.v2.step.charge.result-value" in version_2.stdout

    # The rule set by topics create also makes the registry refuse the breaking version.
    env["SAGAS_SCHEMA_COMPATIBILITY"] = "BACKWARD"
    refused = sagas("topics", "create", "payment_breaking:saga")
    assert refused.returncode == 1
    assert "409" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_check_fails_in_seconds_with_one_line_when_the_registry_is_down(tmp_path: Path) -> None:
    env = {**os.environ, "SAGAS_SCHEMA_REGISTRY_URL": "http://127.0.0.1:9/apis/ccompat/v7",
           "PYTHONPATH": str(REPO)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "schemas", "check",
         "tests.integration.interop.payment_saga:saga"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "schema registry at http://127.0.0.1:9" in done.stderr
