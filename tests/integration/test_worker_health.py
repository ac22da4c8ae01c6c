"""``sagas worker`` with a broker that goes away and comes back, on a broker of its own.

Before, a worker that lost the broker printed about 40 raw librdkafka lines a second and
offered no health endpoint; it said "Running saga ..." before it had any partitions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_kafka() -> Iterator[LocalKafka]:
    with LocalKafka(nodes=1) as cluster:
        yield cluster


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the response open
            return exc.code
    except OSError:
        return 0


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.5)


@pytest.mark.timeout(400)
def test_health_follows_the_broker_and_the_worker_says_so_once(
    own_kafka: LocalKafka, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sagas.cli", "worker", "examples.order_saga:saga",
             "--store", "memory", "--health-port", str(port), "--topic-prefix", "health.",
             "--bootstrap-servers", own_kafka.bootstrap_servers],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _until(lambda: _status(port, "/readyz") == 200, 90, "the worker is ready")
        assert _status(port, "/healthz") == 200
        ready_line = "ready: partitions assigned and restored"
        _until(lambda: ready_line in log_path.read_text(), 5, "the worker says it is ready")

        own_kafka.kill_node(1)
        lost_at = len(log_path.read_text().splitlines())
        _until(lambda: _status(port, "/healthz") == 503, 60, "/healthz turns unhealthy")
        assert _status(port, "/readyz") == 503
        time.sleep(15)  # librdkafka keeps retrying meanwhile
        during = log_path.read_text().splitlines()[lost_at:]
        assert sum("lost the broker at" in line for line in during) == 1
        assert all(" WARNING " in line for line in during if "lost the broker" in line)
        # A handful of lines per client, its repeats folded into one: not one per retry
        # (hundreds over 15 s). A slow machine logs a few more of them.
        assert len(during) < 40, "\n".join(during)
        assert not any(line.startswith("%") for line in during)

        own_kafka.restart_node(1)
        _until(lambda: _status(port, "/healthz") == 200, 120, "/healthz is healthy again")
        _until(lambda: "is back" in log_path.read_text(), 30, "the worker says it is back")
        assert worker.poll() is None, log_path.read_text()
    finally:
        worker.terminate()
        worker.wait(60)
    text = log_path.read_text()
    assert worker.returncode == 0, text
    assert "Traceback" not in text
    back = [line for line in text.splitlines() if "is back" in line]
    assert len(back) == 1
    assert " INFO " in back[0]


@pytest.mark.timeout(180)
def test_json_logs_are_one_object_per_line(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sagas.cli", "worker", "examples.order_saga:saga",
             "--store", "memory", "--log-format", "json", "--topic-prefix", unique_name() + ".",
             "--bootstrap-servers", kafka_bootstrap],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _until(lambda: "ready: partitions" in log_path.read_text(), 90, "the worker is ready")
    finally:
        worker.terminate()
        worker.wait(60)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert worker.returncode == 0
    assert all(set(record) == {"time", "level", "logger", "message"} for record in records)
    assert {"level": "INFO", "logger": "sagas.worker",
            "message": "ready: partitions assigned and restored"} in [
        {k: v for k, v in record.items() if k != "time"} for record in records
    ]  # fmt: skip
