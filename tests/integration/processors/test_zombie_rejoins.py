"""A processor paused (SIGSTOP) past its session and transaction timeouts while another
takes its partitions, then resumed (SIGCONT), finds its producer fenced or its transaction
expired: it starts over as a fresh member under its id and rejoins the group, and every
saga still ends with nothing decided or done twice (the chaos run's verifier checks)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.runner import provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.devkafka.cluster import quiet_client_config
from sagas.engine.versions import compile_versions
from tests.chaos import chaos_saga
from tests.chaos.run import read_run
from tests.chaos.verifier import verify
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants.ledger import LEDGER_ENV
from topics.naming import TopicNames

SAGA_REF = "tests.chaos.chaos_saga:saga"
CHILD_SAGA_REF = "tests.chaos.chaos_saga:insurance"
FRESH = "starting over as a fresh member"
REWOUND = "rewinding to committed offsets"
REVOKED = "revoking assignment and rejoining group"
"""librdkafka's line when the resumed member finds its session gone: it drops its
partitions, and with them the open transaction, before it writes again."""
WENT_ON = (FRESH, REWOUND, REVOKED)
PAUSE_S = 30.0
"""Past the processor's 10 s session and its 15 s transaction timeout, and the broker's
10 s round of aborting timed-out transactions, so the zombie's transaction is aborted
and its producer fenced by the time it resumes."""


def _members(admin: AdminClient, group: str) -> set[str]:
    try:
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except Exception:  # the group may be rebalancing: no members to name yet
        return set()
    if str(described.state).rsplit(".", 1)[-1] != "STABLE":
        return set()
    return {m.group_instance_id or "" for m in described.members if m.assignment.topic_partitions}


def _assigned(admin: AdminClient, group: str, instance: str) -> list[int]:
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    member = next(m for m in described.members if m.group_instance_id == instance)
    return sorted(tp.partition for tp in member.assignment.topic_partitions)


def _pause_mid_transaction(
    process: WorkerProcess, changelog: str, partitions: list[int], bootstrap: str
) -> None:
    """SIGSTOP ``process`` at a moment its transaction is open: a changelog partition only
    it writes then has records past its last stable offset."""
    config = quiet_client_config(bootstrap)
    committed = Consumer({**config, "group.id": "zombie-lso", "isolation.level": "read_committed"})
    raw = Consumer({**config, "group.id": "zombie-hw", "isolation.level": "read_uncommitted"})
    try:
        for _ in range(200):
            os.kill(process.pid, signal.SIGSTOP)
            for p in partitions:
                tp = TopicPartition(changelog, p)
                stable = committed.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                if stable < raw.get_watermark_offsets(tp, timeout=10, cached=False)[1]:
                    return
            os.kill(process.pid, signal.SIGCONT)
            time.sleep(0.01)
        raise AssertionError("the processor was never caught with a transaction open")
    finally:
        committed.close()
        raw.close()


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


@pytest.mark.timeout(300)
def test_a_resumed_zombie_processor_starts_over_and_rejoins(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger_file = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(LEDGER_ENV, str(ledger_file))
    versions = compile_versions(chaos_saga.saga)
    child_versions = compile_versions(chaos_saga.insurance)
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    provision(versions, kafka)
    provision(child_versions, kafka)
    group = TopicNames(chaos_saga.SAGA_NAME, kafka.topic_prefix).processor_group
    admin = AdminClient(quiet_client_config(kafka_bootstrap))

    def member(role: str, name: str, saga_ref: str = SAGA_REF) -> WorkerProcess:
        return WorkerProcess(saga_ref, kafka, role=role, state_dir=tmp_path / name,
                             instance_id=name, log_path=tmp_path / f"{name}.log")  # fmt: skip

    zombie, other, steps = (
        member("processor", "zombie"),
        member("processor", "other"),
        member("steps", "steps"),
    )
    # The trips' insurance children: their processor and worker in one process.
    processes = [zombie, other, steps, member("all", "insurance", CHILD_SAGA_REF)]
    client = SagaClient(kafka)
    started: list[str] = []

    def start(n: int) -> None:
        for _ in range(n):
            wid = f"trip-{len(started):04d}"
            client.start(chaos_saga.saga, chaos_saga.trip_input(wid, delay_ms=20),
                         workflow_id=wid, wait=False)  # fmt: skip
            started.append(wid)
        client.flush(30)

    try:
        for process in processes:
            process.start()
        _wait_for("both processors own partitions",
                  lambda: _members(admin, group) == {"zombie", "other"}, 90)  # fmt: skip
        start(30)
        owned = _assigned(admin, group, "zombie")
        changelog = TopicNames(chaos_saga.SAGA_NAME, kafka.topic_prefix).state_changelog
        start(150)
        _pause_mid_transaction(zombie, changelog, owned, kafka_bootstrap)
        paused = time.monotonic()
        _wait_for("the other processor took every partition",
                  lambda: _members(admin, group) == {"other"}, 60)  # fmt: skip
        while time.monotonic() - paused < PAUSE_S:
            start(2)
            time.sleep(1)
        os.kill(zombie.pid, signal.SIGCONT)
        start(10)
        _wait_for("the resumed zombie rejoined the group",
                  lambda: _members(admin, group) == {"zombie", "other"}, 90)  # fmt: skip
        assert zombie.running, zombie.log_path.read_text(errors="replace")[-3000:]
        # Its transaction was aborted while it slept: it either rewinds (librdkafka bumps
        # the producer epoch), starts over when the producer is fenced for good, or finds
        # its session gone first and drops its partitions with the transaction.
        _wait_for("the zombie met its aborted transaction and went on", lambda: any(
            line in zombie.log_path.read_text() for line in WENT_ON), 30)  # fmt: skip
        start(10)

        def all_ended() -> bool:
            statuses = client.statuses(chaos_saga.SAGA_NAME)
            return all(w in statuses and statuses[w].status.is_final for w in started)

        _wait_for("every workflow ended", all_ended, 120)
        assert all(p.running for p in processes), [p.instance_id for p in processes]
    finally:
        for process in processes:
            if process.running:
                os.kill(process.pid, signal.SIGCONT)
                process.stop()
        client.close()
    log = zombie.log_path.read_text(errors="replace")
    print(log[-2000:])
    assert "Traceback" not in log
    record = read_run(
        kafka,
        sorted(versions.queues | child_versions.queues),
        started=frozenset(started),
        poison_keys=frozenset(),
        ledger_file=ledger_file,
        quiet_since_ms=int(time.time() * 1000),
        terminal_bound_ms=120_000,
    )
    verdict = verify(record, versions, child_versions)
    assert verdict.ok, "\n".join(str(v) for v in verdict.violations[:30])
    assert verdict.terminal == len(started)
