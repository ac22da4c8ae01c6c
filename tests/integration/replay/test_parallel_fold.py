"""Worker processes fold the partitions of the log to exactly what one process folds and
write the store and changelog it writes, and a failing worker is one error with nothing
written."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from processors.partition_workers import FoldWorkerError
from processors.replay import fold_log, replay
from processors.runner import Role, WorkerRunner
from processors.settings import ProcessorSettings
from processors.store.memory import MemoryPartitionStore
from processors.store.recovery import ChangelogRestorer
from processors.store.rocksdb import RocksDBStore
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, compile_versions
from tests.integration.participants import flaky_order
from tests.integration.processors.saga_run_checks import wait_until_final
from tests.integration.replay import unknown_version
from tests.integration.replay.conftest import recreate_changelog, stored_states
from topics.naming import TopicNames

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

WORKFLOWS = [f"order-{i:03d}" for i in range(12)]


def _run(versions: SagaVersions, kafka: KafkaSettings, state_dir: Path) -> None:
    runner = WorkerRunner(
        versions, kafka, role=Role.ALL, processor_settings=ProcessorSettings(state_dir=state_dir)
    ).start()
    client = SagaClient(kafka)
    try:
        runner.wait_ready()
        for wid in WORKFLOWS:
            client.start(flaky_order.saga, flaky_order.order_input(wid), workflow_id=wid,
                         wait=False)  # fmt: skip
        wait_until_final(client, WORKFLOWS, timeout=90)
    finally:
        runner.stop()
        client.close()
    runner.raise_errors()


def test_worker_processes_fold_what_one_process_folds(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    _run(flaky_versions, flaky_kafka, tmp_path / "state")

    ranges, alone = fold_log(flaky_versions, flaky_kafka, jobs=1)
    parallel_ranges, parallel = fold_log(flaky_versions, flaky_kafka, jobs=2)

    assert len(ranges) > 1, "one partition would fold in this process"
    assert parallel_ranges == ranges
    assert [p.partition for p in parallel] == [p.partition for p in alone]
    assert [p.changes for p in parallel] == [p.changes for p in alone]
    assert [p.events for p in parallel] == [p.events for p in alone]
    assert [p.parked for p in parallel] == [p.parked for p in alone]
    states = {wid: s.to_bytes() for p in alone for wid, s in p.states.items()}
    assert sorted(states) == WORKFLOWS
    assert {wid: s.to_bytes() for p in parallel for wid, s in p.states.items()} == states


def _changelog(versions: SagaVersions, kafka: KafkaSettings) -> dict[bytes, bytes]:
    """Every key the changelog holds, with its value, over all partitions."""
    restorer = ChangelogRestorer(
        kafka.client_config(), TopicNames(versions.name, kafka.topic_prefix).state_changelog
    )
    held: dict[bytes, bytes] = {}
    try:
        for partition in range(3):
            store = MemoryPartitionStore(partition)
            restorer.restore(store)
            held.update(store.iter_range(b""))
    finally:
        restorer.close()
    return held


def _stored(versions: SagaVersions, kafka: KafkaSettings, state_dir: Path) -> dict[bytes, bytes]:
    """Every key of the local stores, with its value, over all partitions."""
    names = TopicNames(versions.name, kafka.topic_prefix)
    store = RocksDBStore(state_dir, names.processor_group, names.events)
    try:
        return {k: v for p in range(3) for k, v in store.partition(p).iter_range(b"")}
    finally:
        store.close()


def test_worker_processes_write_what_one_process_writes(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    _run(flaky_versions, flaky_kafka, tmp_path / "state")

    recreate_changelog(flaky_versions, flaky_kafka)
    alone = replay(flaky_versions, flaky_kafka, tmp_path / "alone", jobs=1)
    stored = _stored(flaky_versions, flaky_kafka, tmp_path / "alone")
    changelog = _changelog(flaky_versions, flaky_kafka)
    recreate_changelog(flaky_versions, flaky_kafka)
    # Two workers for three partitions: one folds two and holds both until it may write.
    workers = replay(flaky_versions, flaky_kafka, tmp_path / "workers", jobs=2)

    assert len(alone.partitions) == 3
    assert _stored(flaky_versions, flaky_kafka, tmp_path / "workers") == stored
    assert _changelog(flaky_versions, flaky_kafka) == changelog
    # Every state, index entry and timer is in the changelog, as the store holds it.
    assert changelog == stored
    assert [(p.partition, p.events, p.workflows, p.end_offset) for p in workers.partitions] == [
        (p.partition, p.events, p.workflows, p.end_offset) for p in alone.partitions
    ]
    written = [p.changelog_records for p in alone.partitions]
    assert [p.changelog_records for p in workers.partitions] == written
    assert sum(written) == len(stored)
    # Again: the changelog agrees already, so the workers write no record to it.
    again = replay(flaky_versions, flaky_kafka, tmp_path / "workers", jobs=2)
    assert [p.changelog_records for p in again.partitions] == [0, 0, 0]
    assert _stored(flaky_versions, flaky_kafka, tmp_path / "workers") == stored


def test_a_failing_worker_is_one_error_and_nothing_is_written(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    live = tmp_path / "state"
    _run(flaky_versions, flaky_kafka, live)
    before = stored_states(flaky_versions, flaky_kafka, live)
    # The same saga at a version the log never ran: every worker fails its fold.
    with pytest.raises(FoldWorkerError) as raised:
        replay(compile_versions(unknown_version.saga), flaky_kafka, live, jobs=2)

    message = str(raised.value)
    assert "\n" not in message
    assert "which the given definition lacks" in message
    assert "nothing was written: rerun the replay" in message
    assert stored_states(flaky_versions, flaky_kafka, live) == before


def test_workers_start_clean_while_this_process_resolves_addresses(
    flaky_versions: SagaVersions, flaky_kafka: KafkaSettings, ledger_file: Path, tmp_path: Path
) -> None:
    # A thread holding glibc's address-lookup lock when a worker is forked from this
    # process would leave the worker's copy locked for ever, its consumer hung resolving
    # the broker. Threads of a process running Kafka clients look up addresses at any
    # moment: here one does so without a pause, through several replays' worker starts.
    _run(flaky_versions, flaky_kafka, tmp_path / "state")
    stop = threading.Event()

    def resolve() -> None:
        while not stop.is_set():
            socket.getaddrinfo("127.0.0.1", 9092, flags=socket.AI_ADDRCONFIG)

    resolver = threading.Thread(target=resolve, daemon=True)
    resolver.start()
    try:
        folds = [fold_log(flaky_versions, flaky_kafka, jobs=2)[1] for _ in range(5)]
    finally:
        stop.set()
        resolver.join()
    assert all(len(rebuilt) > 1 for rebuilt in folds)
    assert all([p.changes for p in rebuilt] == [p.changes for p in folds[0]] for rebuilt in folds)
