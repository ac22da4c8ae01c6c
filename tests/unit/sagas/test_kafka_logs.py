"""librdkafka's lines through Python logging: levels, and one line per repeated condition."""

from __future__ import annotations

import json
import logging

import pytest

from sagas.cli.log_setup import JsonFormatter
from sagas.config import KafkaSettings
from sagas.kafka_logs import (
    KafkaLogBridge,
    RepeatSuppressor,
    admin_client_config,
    condition_of,
    logging_level,
)


@pytest.mark.parametrize(
    ("syslog", "level"),
    [
        (0, logging.CRITICAL),
        (2, logging.CRITICAL),
        (3, logging.ERROR),
        (4, logging.WARNING),
        (5, logging.INFO),
        (6, logging.INFO),
        (7, logging.DEBUG),
        (9, logging.DEBUG),
    ],
)
def test_syslog_levels_map_to_logging_levels(syslog: int, level: int) -> None:
    assert logging_level(syslog) == level


REFUSED = (
    "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
    " (after {ms}ms in state CONNECT, {n} identical error(s) suppressed)"
)


def test_retries_of_one_condition_share_a_key_and_other_conditions_do_not() -> None:
    assert condition_of(REFUSED.format(ms=0, n=4)) == condition_of(REFUSED.format(ms=12, n=9))
    assert condition_of(REFUSED.format(ms=0, n=4)) != condition_of("1/1 brokers are down")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_condition_is_logged_once_per_window_with_its_count() -> None:
    clock = _Clock()
    suppressor = RepeatSuppressor(window_s=30.0, clock=clock)
    admitted = []
    for second in range(0, 30, 3):
        clock.now = second
        admitted.append(suppressor.admit(REFUSED.format(ms=second, n=second)))
    assert admitted[0] == (True, [])
    assert all(verdict == (False, []) for verdict in admitted[1:])
    clock.now = 31.0
    assert suppressor.admit(REFUSED.format(ms=1, n=1)) == (
        True,
        ["repeated 9 more time(s): " + REFUSED.format(ms=0, n=0)],
    )


def test_a_different_line_after_repeats_tells_their_count() -> None:
    clock = _Clock()
    suppressor = RepeatSuppressor(window_s=30.0, clock=clock)
    suppressor.admit(REFUSED.format(ms=0, n=0))
    suppressor.admit(REFUSED.format(ms=5, n=1))
    suppressor.admit(REFUSED.format(ms=7, n=2))
    clock.now = 8.0
    assert suppressor.admit("Connected to the broker") == (
        True,
        ["repeated 2 more time(s): " + REFUSED.format(ms=0, n=0)],
    )


def test_the_bridge_logs_confluent_kafka_calls_once_per_condition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = KafkaLogBridge(logging.getLogger("sagas.kafka.test"))
    with caplog.at_level(logging.DEBUG, logger="sagas.kafka.test"):
        for n in range(40):
            # As confluent-kafka calls it: level, format, facility, client name, text.
            bridge.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1",
                       REFUSED.format(ms=n, n=n))  # fmt: skip
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [(logging.ERROR, "rdkafka#producer-1 FAIL: " + REFUSED.format(ms=0, n=0))]


def test_a_retry_while_a_coordinator_loads_is_info_and_other_warnings_stay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = KafkaLogBridge(logging.getLogger("sagas.kafka.loading"))
    loading = (
        "Failed to acquire idempotence PID from broker 127.0.0.1:19092/1: "
        "Broker: Coordinator load in progress: retrying"
    )
    with caplog.at_level(logging.DEBUG, logger="sagas.kafka.loading"):
        bridge.log(logging.WARNING, "%s [%s] %s", "GETPID", "p", loading)
        bridge.log(logging.WARNING, "%s [%s] %s", "GETPID", "p", "Coordinator load in progress")
        bridge.log(logging.WARNING, "%s [%s] %s", "SESSTMOUT", "p", "Session timed out: retrying")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "p GETPID: " + loading),
        (logging.WARNING, "p GETPID: Coordinator load in progress"),
        (logging.WARNING, "p SESSTMOUT: Session timed out: retrying"),
    ]


def test_the_bridge_skips_lines_below_the_loggers_level(caplog: pytest.LogCaptureFixture) -> None:
    bridge = KafkaLogBridge(logging.getLogger("sagas.kafka.quiet"))
    with caplog.at_level(logging.ERROR, logger="sagas.kafka.quiet"):
        bridge.log(logging.WARNING, "%s [%s] %s", "GETPID", "p", "Coordinator load in progress")
        bridge.log(logging.ERROR, "%s [%s] %s", "FAIL", "p", "Connection refused")
    assert [r.getMessage() for r in caplog.records] == ["p FAIL: Connection refused"]


def test_json_log_lines_hold_time_level_logger_and_message() -> None:
    record = logging.LogRecord(
        "sagas.worker", logging.WARNING, __file__, 1, "lost %s", ("x",), None
    )
    data = json.loads(JsonFormatter().format(record))
    assert data["level"] == "WARNING"
    assert data["logger"] == "sagas.worker"
    assert data["message"] == "lost x"
    assert data["time"].endswith("+00:00")


def test_an_admin_client_config_has_no_logger_and_librdkafka_prints_nothing() -> None:
    config = KafkaSettings(bootstrap_servers="127.0.0.1:1").client_config()
    assert isinstance(config["logger"], KafkaLogBridge)
    admin = admin_client_config(config)
    assert "logger" not in admin
    assert admin["log_level"] == 0
    assert admin["bootstrap.servers"] == "127.0.0.1:1"
    assert "logger" in config  # the caller's settings are left as they were
