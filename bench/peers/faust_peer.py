"""faust-streaming running the 4-step order saga: completed sagas/s at saturation on this box.

The faust worker (:mod:`bench.peers.faust_app`) runs in the peers' environment as its own
process; this process, on confluent-kafka, keeps ``in_flight`` sagas running in a closed
loop — a start is sent for each completion read from the completed topic — and counts
completions over a steady window after a warm-up.

Run alone: ``python -m bench.peers.faust_peer [--bootstrap HOST:PORT] [--quick]`` (without
``--bootstrap`` it starts a local broker); the harness calls :func:`run_faust`.

faust's exactly-once picks the transactional producer of an output record by the
record's destination partition, but commits a transaction only with the offsets of a
consumed partition of the same number. Output sent to another partition number stays in
an open transaction, invisible to ``read_committed`` readers, until that partition
happens to consume something: a lone saga whose start and command hash to different
partitions never ends. A faust team co-partitions its topics to avoid this, and so do
we: every topic has the same partition count and every record is keyed by workflow id
with faust's (Java's) murmur2 partitioner.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer

# confluent-kafka documents NewTopic under confluent_kafka.admin but leaves it out of
# its __all__, which strict mypy reads as "not exported".
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench.peers.figures import CpuMeter, SteadyWindow, listening_pid
from bench.peers.install import (
    REPO_ROOT,
    PeerError,
    end_process_group,
    ensure_peer_python,
    sigterm_raises,
)
from sagas.devkafka import LocalKafka, free_port
from sagas.devkafka.cluster import quiet_client_config
from sagas.errors import KafkaUnavailableError

READY_TIMEOUT_S = 180.0
COMMIT_INTERVAL_S = 0.05


def run_faust(
    bootstrap: str,
    duration_s: float = 25.0,
    in_flight: int = 300,
    warmup_s: float = 8.0,
    *,
    partitions: int = 4,
    commit_interval_s: float = COMMIT_INTERVAL_S,
    exactly_once: bool = True,
) -> dict[str, Any]:
    """Measure faust-streaming's completed sagas/s with ``in_flight`` sagas kept running.

    ``exactly_once=False`` runs faust at least once, to show what its transactions cost.
    """
    guarantee = "exactly_once" if exactly_once else "at_least_once"
    python = ensure_peer_python()
    prefix = f"faustpeer-{uuid.uuid4().hex[:8]}"
    names = {
        "events": f"{prefix}.events",
        "commands": f"{prefix}.commands",
        "completed": f"{prefix}.completed",
    }
    config = quiet_client_config(bootstrap)
    admin = AdminClient(config)
    _create_topics(admin, list(names.values()), partitions)
    try:
        with (
            sigterm_raises(),
            tempfile.TemporaryDirectory(prefix="faust-peer-") as tmp,
            _faust_worker(
                python, bootstrap, prefix, partitions, commit_interval_s, guarantee, Path(tmp)
            ) as worker,
        ):
            figures = _closed_loop(config, names, worker, duration_s, in_flight, warmup_s)
    finally:
        _delete_topics(admin, prefix)
    return {
        "system": "faust-streaming",
        "driver": "aiokafka (kafka://)",
        "store": "rocksdb:// (rocksdict)",
        "processing_guarantee": guarantee,
        "commit_interval_s": commit_interval_s,
        "partitions": partitions,
        "in_flight": in_flight,
        **figures,
    }


def _create_topics(admin: AdminClient, names: list[str], partitions: int) -> None:
    """Create the app's topics up front so that the load can start before faust does."""
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    )
    for name, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"could not create topic {name!r}: {exc}") from exc


def _delete_topics(admin: AdminClient, prefix: str) -> None:
    """Remove every topic of this run, faust's changelog included, from the shared broker."""
    with suppress(KafkaException):
        topics = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
        if topics:
            for future in admin.delete_topics(topics).values():
                with suppress(KafkaException):
                    future.result(timeout=30)


@contextmanager
def _faust_worker(
    python: Path,
    bootstrap: str,
    prefix: str,
    partitions: int,
    commit_interval_s: float,
    guarantee: str,
    data_dir: Path,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the faust worker in its own process group, ended with the block."""
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO_ROOT),
        FAUST_PEER_BOOTSTRAP=bootstrap,
        FAUST_PEER_PREFIX=prefix,
        FAUST_PEER_PARTITIONS=str(partitions),
        FAUST_PEER_DATA_DIR=str(data_dir / "faust"),
        FAUST_PEER_COMMIT_INTERVAL_S=str(commit_interval_s),
        FAUST_PEER_WEB_PORT=str(free_port()),
        FAUST_PEER_GUARANTEE=guarantee,
    )
    log_path = data_dir / "faust-worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [str(python), "-m", "bench.peers.faust_app", "worker", "--loglevel", "warn"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield worker
    except BaseException:
        print(f"faust worker log (tail):\n{log_path.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        end_process_group(worker)


def _closed_loop(
    config: dict[str, Any],
    names: dict[str, str],
    worker: subprocess.Popen[bytes],
    duration_s: float,
    in_flight: int,
    warmup_s: float,
) -> dict[str, Any]:
    """Warm faust up with one saga, then keep ``in_flight`` running and count completions."""
    # murmur2 is the partitioner of faust's aiokafka producer: a start must land on the
    # partition the saga's commands and answers will use, or faust's per-partition
    # transactions leave the saga's output uncommitted (see the module docstring).
    producer = Producer(
        {
            **config,
            "enable.idempotence": True,
            "linger.ms": 2,
            "partitioner": "murmur2_random",
        }
    )
    consumer = Consumer(
        {
            **config,
            "group.id": f"{names['completed']}-driver",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([names["completed"]])
    started_at: dict[str, float] = {}
    sequence = 0

    def start_one() -> None:
        nonlocal sequence
        workflow_id = f"order-{sequence}"
        sequence += 1
        started_at[workflow_id] = time.monotonic()
        value = json.dumps({"workflow_id": workflow_id, "kind": "start"}).encode()
        producer.produce(names["events"], key=workflow_id.encode(), value=value)
        producer.poll(0)

    def completions(timeout_s: float) -> list[str]:
        if worker.poll() is not None:
            raise PeerError(f"the faust worker exited with {worker.returncode}")
        done = []
        for message in consumer.consume(num_messages=1000, timeout=timeout_s):
            key = message.key()
            if message.error() is None and key is not None:
                done.append(key.decode())
        return done

    try:
        start_one()
        producer.flush(10)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not completions(0.5):
            if time.monotonic() > deadline:
                raise PeerError(
                    f"faust completed no saga within {READY_TIMEOUT_S:.0f} s of starting"
                )
        started_at.clear()
        system = {"faust_worker": worker.pid}
        # The broker is faust's store and transport, as SQLite is inside Temporal's server:
        # count it when it runs on this machine where we can see it.
        broker = listening_pid(int(config["bootstrap.servers"].split(",")[0].rpartition(":")[2]))
        if broker is not None:
            system["broker"] = broker
        meter = CpuMeter(system=system, load={"load": os.getpid()})
        window = SteadyWindow(time.monotonic(), warmup_s, duration_s, in_flight, READY_TIMEOUT_S)
        for _ in range(in_flight):
            start_one()
        while not window.finished(time.monotonic()):
            if window.opened_at is not None and not meter.started:
                meter.start()
            for workflow_id in completions(0.05):
                begun = started_at.pop(workflow_id, None)
                if begun is None:
                    continue
                window.record(begun, time.monotonic())
                start_one()
        meter.stop()
        figures = window.figures()
        return {
            **figures,
            **meter.figures(figures["completed_in_window"]),
            "started_total": sequence,
            "in_flight_at_end": len(started_at),
        }
    finally:
        consumer.close()
        producer.flush(10)


def main(argv: list[str] | None = None) -> None:
    """Measure faust-streaming from the command line and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", help="Kafka to use (default: start a local broker)")
    parser.add_argument("--duration", type=float, default=25.0, help="steady window, seconds")
    parser.add_argument("--warmup", type=float, default=8.0, help="warm-up, seconds")
    parser.add_argument("--in-flight", type=int, default=300, help="sagas kept running")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--commit-interval", type=float, default=COMMIT_INTERVAL_S, help="faust's, seconds"
    )
    parser.add_argument(
        "--at-least-once", action="store_true", help="turn faust's transactions off"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    options = parser.parse_args(argv)
    if options.quick:
        options.duration, options.warmup = 4.0, 3.0

    def measure(bootstrap: str) -> dict[str, Any]:
        return run_faust(
            bootstrap,
            options.duration,
            options.in_flight,
            options.warmup,
            partitions=options.partitions,
            commit_interval_s=options.commit_interval,
            exactly_once=not options.at_least_once,
        )

    if options.bootstrap:
        figures = measure(options.bootstrap)
    else:
        with LocalKafka(nodes=1) as cluster:
            figures = measure(cluster.bootstrap_servers)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
