"""Shared fixtures: a real Kafka broker and schema registry, started once per session; names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sagas.devkafka import LocalKafka
from sagas.devkafka.apicurio import LocalSchemaRegistry
from sagas.devkafka.cluster import quiet_client_config

_INTEGRATION_DIR = Path(__file__).parent / "integration"
_ROOT = Path(__file__).parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    # A compiled module built from an older source would be tested in place of the
    # edited one: refuse to run rather than pass on code that is not the tree's.
    check = subprocess.run(
        [sys.executable, str(_ROOT / "scripts" / "compile_native.py"), "--check"],
        capture_output=True,
        text=True,
    )
    if check.returncode:
        pytest.exit(
            f"{check.stderr.strip()}\nrecompile: .venv/bin/python scripts/compile_native.py"
            " (or --clean to test the sources as pure Python)",
            returncode=2,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/integration talks to a broker; marking it here keeps
    # `pytest -m "not kafka"` a fast, broker-free run without relying on each file.
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker: SAGAS_TEST_BOOTSTRAP_SERVERS, or a local one."""
    configured = os.environ.get("SAGAS_TEST_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    # The suite creates thousands of partitions in one session: more heap than a laptop
    # broker needs keeps the broker answering to the end.
    with LocalKafka(nodes=1, heap="1g") as cluster:
        yield cluster.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[LocalKafka]:
    """A three-broker local cluster (replication 3, min.insync 2) for fault tests."""
    with LocalKafka(nodes=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def schema_registry(request: pytest.FixtureRequest) -> Iterator[str]:
    """The Confluent-compatible URL of a real Apicurio Registry started for the session.

    SAGAS_TEST_SCHEMA_REGISTRY_URL uses a running one instead. The first run on a machine
    resolves the registry (~160 MB) with Maven; its progress is shown even under capture.
    """
    configured = os.environ.get("SAGAS_TEST_SCHEMA_REGISTRY_URL")
    if configured:
        yield configured
        return
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def progress(line: str) -> None:
        with capture.global_and_fixture_disabled():
            print(line, file=sys.stderr, flush=True)

    with LocalSchemaRegistry(progress=progress) as registry:
        yield registry.url


@pytest.fixture
def kafka_config(kafka_bootstrap: str) -> dict[str, Any]:
    """librdkafka settings for the session broker, with connection noise kept quiet."""
    return quiet_client_config(kafka_bootstrap)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Return a function making topic- and group-safe names unique to this test."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:60]

    def make(suffix: str = "") -> str:
        name = f"{base}-{uuid.uuid4().hex[:8]}"
        return f"{name}-{suffix}" if suffix else name

    return make
