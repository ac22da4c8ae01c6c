"""The shipped Prometheus rules are valid and behave as their unit tests say, per promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "rules"
RULES = RULES_DIR / "kafka-sagas.rules.yml"
RULE_TESTS = RULES_DIR / "kafka-sagas.rules.test.yml"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run scripts/bootstrap (Debian package prometheus)")
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_rules_file_is_valid() -> None:
    result = _promtool("check", "rules", str(RULES), cwd=RULES_DIR)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass() -> None:
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=RULES_DIR)

    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    rules = RULES.read_text()
    assert "consumer_lag_seconds:max > 60" in rules
    (tmp_path / RULES.name).write_text(
        rules.replace("consumer_lag_seconds:max > 60", "consumer_lag_seconds:max > 600")
    )
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)

    result = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)

    assert result.returncode != 0
    assert "SagasConsumerLagHigh" in result.stdout + result.stderr


def test_every_alert_the_operators_need_is_shipped() -> None:
    rules = RULES.read_text()

    for alert in (
        "SagasConsumerLagHigh",
        "SagasStepDispatchBudgetBurnFast",
        "SagasStepDispatchBudgetBurnSlow",
        "SagasDeadLetterQueueGrowing",
        "SagasWorkflowsFailed",
        "SagasWorkflowsParked",
        "SagasNoLiveProcessor",
        "SagasWorkerCannotReachKafka",
        "SagasQueryProcessRestarting",
    ):
        assert f"- alert: {alert}\n" in rules
        assert f"alertname: {alert}\n" in RULE_TESTS.read_text(), f"{alert} has no unit test"
