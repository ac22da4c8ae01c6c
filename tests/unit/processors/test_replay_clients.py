"""The replay tools' Kafka clients: librdkafka's lines stay out of a caller's output, and
the transactional init waits out a coordinator that is still loading."""

from __future__ import annotations

import subprocess
import sys

import pytest
from confluent_kafka import KafkaError, KafkaException

from processors.changelog_rewrite import init_transactions

QUIET_SCRIPT = """
import logging
from processors.log_reading import client_config
from sagas.config import KafkaSettings
bridge = client_config(KafkaSettings(bootstrap_servers="127.0.0.1:1"))["logger"]
bridge.log(logging.WARNING, "%s [%s] %s", "GETPID", "producer-1",
           "Failed to acquire transactional PID: Coordinator load in progress")
print("done")
"""

SHOWN_SCRIPT = (
    "import logging, sys\nlogging.basicConfig(stream=sys.stdout, level=logging.INFO)\n"
    + QUIET_SCRIPT
)


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )


def test_librdkafka_lines_of_replay_clients_are_silent_without_logging_configured() -> None:
    ran = _run(QUIET_SCRIPT)
    assert ran.stdout == "done\n"
    assert ran.stderr == ""


def test_librdkafka_lines_of_replay_clients_reach_a_configured_handler() -> None:
    ran = _run(SHOWN_SCRIPT)
    assert "sagas.kafka.replay" in ran.stdout
    assert "Coordinator load in progress" in ran.stdout


class _LoadingCoordinator:
    """A producer whose first transactional inits fail with ``errors``, in order."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls = 0

    def init_transactions(self, timeout: float) -> None:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))


def test_init_transactions_tries_again_while_the_coordinator_loads() -> None:
    producer = _LoadingCoordinator(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT)
    init_transactions(producer, timeout_s=10)  # type: ignore[arg-type]
    assert producer.calls == 3


def test_init_transactions_gives_up_on_other_errors_at_once() -> None:
    producer = _LoadingCoordinator(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        init_transactions(producer, timeout_s=10)  # type: ignore[arg-type]
    assert producer.calls == 1


def test_init_transactions_gives_up_when_the_time_is_out() -> None:
    producer = _LoadingCoordinator(*[KafkaError.COORDINATOR_LOAD_IN_PROGRESS] * 100)
    with pytest.raises(KafkaException):
        init_transactions(producer, timeout_s=0.5)  # type: ignore[arg-type]
    assert 1 < producer.calls < 100
