"""Fixtures of the replay tests: the runtime tests' flaky order saga, and helpers to run
the CLI in process and to read a processor's stored states."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner, Result
from confluent_kafka.admin import AdminClient

from processors.runner import provision
from processors.store.keys import WORKFLOW_PREFIX, prefix_end
from processors.store.rocksdb import RocksDBStore
from sagas.cli import main
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from tests.integration.processors.conftest import flaky_kafka, flaky_versions, ledger_file
from topics.naming import TopicNames

__all__ = ["flaky_kafka", "flaky_versions", "ledger_file"]

SAGA_REF = "tests.integration.participants.flaky_order:saga"


def run_cli(kafka: KafkaSettings, *args: str) -> Result:
    """``sagas ARGS`` in this process, against ``kafka``."""
    return CliRunner().invoke(
        main,
        [
            *args,
            "--bootstrap-servers",
            kafka.bootstrap_servers,
            "--topic-prefix",
            kafka.topic_prefix,
        ],
        catch_exceptions=False,
    )


def stored_states(
    versions: SagaVersions, kafka: KafkaSettings, state_dir: Path, prefix: bytes = WORKFLOW_PREFIX
) -> dict[bytes, bytes]:
    """Every key under ``prefix`` (default: the workflow states) and its value in the
    processor's local stores."""
    names = TopicNames(versions.name, kafka.topic_prefix)
    store = RocksDBStore(state_dir, names.processor_group, names.events)
    found: dict[bytes, bytes] = {}
    try:
        partition = 0
        while store.partition_path(partition).exists():
            stop = prefix_end(prefix)
            found.update(store.partition(partition).iter_range(prefix, stop))
            partition += 1
    finally:
        store.close()
    return found


def recreate_changelog(versions: SagaVersions, kafka: KafkaSettings) -> None:
    """Delete the changelog topic and create it again, empty, as a lost changelog is."""
    topic = TopicNames(versions.name, kafka.topic_prefix).state_changelog
    admin = AdminClient(kafka.client_config())
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 60
    while topic in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, f"{topic} was not deleted"
        time.sleep(0.2)
    while True:
        try:
            provision(versions, kafka)
            return
        except Exception:
            # The broker may refuse the name while the deletion completes.
            assert time.monotonic() < deadline, f"{topic} could not be created again"
            time.sleep(0.5)
