"""``sagas topics describe`` without a broker: its help, and one clear line when Kafka is away."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[3]
SAGA_REF = "tests.integration.participants.flaky_order:saga"


def _sagas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagas.cli", *args],
        cwd=_REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_help_says_what_it_shows() -> None:
    done = _sagas("topics", "describe", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "partitions, replication factor, min.insync.replicas, cleanup policy and" in text
    assert "--output [table|json]" in text


@pytest.mark.timeout(60)
def test_an_unreachable_kafka_fails_within_seconds_in_one_line() -> None:
    # Port 1 on localhost: nothing listens there, so every connection is refused.
    started = time.monotonic()
    done = _sagas("topics", "describe", SAGA_REF, "--bootstrap-servers", "127.0.0.1:1",
                  "--connect-timeout", "2")  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 4  # Kafka unreachable, as for every command
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: cannot reach Kafka at 127.0.0.1:1 within 2 s: "), lines
    assert took < 15


def test_settings_no_write_could_satisfy_are_one_line() -> None:
    done = _sagas("topics", "describe", SAGA_REF, "--bootstrap-servers", "127.0.0.1:1",
                  "--min-insync-replicas", "0")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: invalid topic settings: min_insync_replicas: Input should be greater than or"
        " equal to 1"
    ]
