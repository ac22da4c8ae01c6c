"""``sagas dashboard`` as a user runs it: its help, and the ways it refuses to start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
SAGA = "examples.order_saga:saga"


def sagas(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sagas.cli", *args], cwd=REPO, capture_output=True, text=True,
        timeout=60, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return done, time.monotonic() - began


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_help_says_what_it_serves() -> None:
    done, _ = sagas("dashboard", "--help")
    assert done.returncode == 0
    for words in ("workflows", "history", "lag", "dead-letter", "--prometheus-url", "--token"):
        assert words in done.stdout


def test_unreachable_kafka_fails_fast_in_one_line() -> None:
    port = closed_port()
    done, took = sagas("dashboard", SAGA, "--port", "0", "--bootstrap-servers", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert took < 15
    assert done.stderr.strip().splitlines() == [
        f"Error: Kafka at 127.0.0.1:{port} did not answer within 5 s"
    ]


def test_beyond_loopback_it_refuses_to_start_without_a_token() -> None:
    env = {"SAGAS_DASHBOARD_TOKEN": ""}
    done, _ = sagas("dashboard", SAGA, "--host", "0.0.0.0", env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "refusing to serve the dashboard on 0.0.0.0 without a token" in lines[0]


def test_a_busy_port_fails_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done, _ = sagas("dashboard", SAGA, "--port", str(port))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
