"""Fixtures of the runtime tests: the flaky order saga on fresh topics, and its ledger."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from processors.runner import provision
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, compile_versions
from tests.integration.participants import flaky_order
from tests.integration.participants.ledger import LEDGER_ENV


@pytest.fixture
def flaky_versions() -> SagaVersions:
    """The compiled flaky order saga."""
    return compile_versions(flaky_order.saga)


@pytest.fixture
def flaky_kafka(
    kafka_bootstrap: str, unique_name: Callable[[str], str], flaky_versions: SagaVersions
) -> KafkaSettings:
    """Settings with a topic prefix of this test alone, its saga topics created."""
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    provision(flaky_versions, kafka)
    return kafka


@pytest.fixture
def ledger_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The effect ledger of this test, named in the environment for in-process participants."""
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(LEDGER_ENV, str(path))
    return path
