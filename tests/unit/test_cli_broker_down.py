"""Every command against a port nothing listens on: one line, exit code 4, in about 10 s.

Before, ``sagas start`` took 62 s and ended in a traceback and hundreds of raw librdkafka
lines, since closing the client flushed and raised again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sagas.cli.exit_codes import ExitCode
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.devkafka.cluster import free_port
from sagas.errors import KafkaUnreachableError

ROOT = Path(__file__).resolve().parents[2]
SAGA = "examples.order_saga:saga"
COMMANDS = {
    "start": ["start", "order", "--input", "{}"],
    "status": ["status", "order", "w1"],
    "result": ["result", "order", "w1"],
    "signal": ["signal", "order", "w1", "approve"],
    "cancel": ["cancel", "order", "w1"],
    "terminate": ["terminate", "order", "w1", "--reason", "test"],
    "history": ["history", "order", "w1"],
    "describe": ["describe", "order", "w1"],
    "list": ["list", "order"],
    "query": ["query", "order", "w1", "progress"],
    "dlq list": ["dlq", "list", "order"],
    "dlq redrive": ["dlq", "redrive", "order", "--all"],
    "dlq discard": ["dlq", "discard", "order", "--all"],
    "topics create": ["topics", "create", SAGA],
    "worker": ["worker", SAGA, "--store", "memory", "--health-port", str(free_port())],
}
# The probe waits 10 s; starting Python and the command takes the rest.
LIMIT_S = 14.0


def _run_all(address: str, at_once: int) -> dict[str, tuple[float, int, str, str]]:
    """Run the commands, ``at_once`` at a time (the machine's other work slows a crowd of
    Pythons starting together), each timed from its start to its exit."""
    waiting = list(COMMANDS.items())
    running: dict[str, tuple[float, subprocess.Popen[str]]] = {}
    ended: dict[str, tuple[float, int, str, str]] = {}
    while waiting or running:
        while waiting and len(running) < at_once:
            name, args = waiting.pop(0)
            running[name] = (
                time.monotonic(),
                subprocess.Popen(
                    [sys.executable, "-m", "sagas.cli", *args, "--bootstrap-servers", address],
                    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                ),
            )  # fmt: skip
        for name, (begun, process) in list(running.items()):
            if process.poll() is not None:
                out, err = process.communicate()
                ended[name] = (time.monotonic() - begun, process.returncode, out, err)
                del running[name]
        time.sleep(0.05)
    return ended


@pytest.mark.timeout(240)
def test_every_command_fails_with_one_line_and_exit_code_4_within_the_connect_timeout() -> None:
    address = f"127.0.0.1:{free_port()}"
    ended = _run_all(address, at_once=4)
    expected = (
        f"Error: cannot reach Kafka at {address} within 10 s: is the broker running?"
        " (set SAGAS_BOOTSTRAP_SERVERS)\n"
    )
    for name, (_, code, out, err) in ended.items():
        assert (name, code, out, err) == (name, ExitCode.KAFKA_UNREACHABLE, "", expected)
    slow = {name: round(seconds, 1) for name, (seconds, *_) in ended.items() if seconds >= LIMIT_S}
    assert not slow, f"slower than {LIMIT_S} s: {slow}"


@pytest.mark.timeout(60)
def test_the_connect_timeout_is_an_option_and_a_setting() -> None:
    address = f"127.0.0.1:{free_port()}"
    begun = time.monotonic()
    failed = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "status", "order", "w1", "--connect-timeout", "2",
         "--bootstrap-servers", address],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert failed.returncode == ExitCode.KAFKA_UNREACHABLE
    assert f"cannot reach Kafka at {address} within 2 s" in failed.stderr
    assert time.monotonic() - begun < 6
    assert (
        KafkaSettings(connect_timeout=3).client_config()["socket.connection.setup.timeout.ms"]
        == 3000
    )


@pytest.mark.timeout(60)
def test_the_client_raises_once_and_closes_without_flushing_again() -> None:
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout=2)
    client = SagaClient(kafka)
    begun = time.monotonic()
    with pytest.raises(KafkaUnreachableError, match="cannot reach Kafka"):
        client.start("order", {"order_id": "1"})
    client.close()
    client.close()
    assert time.monotonic() - begun < 5


def test_version_and_exit_codes_are_on_the_command_line() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "--version"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert version.stdout.startswith("sagas, version ")
    help_text = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "Exit codes: 0 ok, 1 error, 2 usage error, 3 workflow not found" in " ".join(
        help_text.split()
    )
    usage = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "status"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert usage.returncode == ExitCode.USAGE
