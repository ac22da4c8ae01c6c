"""librdkafka's log lines, sent through Python logging once per condition.

Every producer and consumer gets a :class:`KafkaLogBridge` as its confluent-kafka
``logger`` setting (see ``KafkaSettings.client_config``), so its lines reach the
``sagas.kafka`` logger at their own level instead of the terminal; admin clients log
nothing (:func:`admin_client_config`). A broker
that is down makes librdkafka repeat the same line on every reconnect attempt; the
bridge passes the first and counts the rest.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

LOGGER_NAME = "sagas.kafka"
REPEAT_WINDOW_S = 60.0

# librdkafka's syslog levels (0 emergency .. 7 debug) as logging levels.
_SYSLOG_LEVELS = (
    logging.CRITICAL,
    logging.CRITICAL,
    logging.CRITICAL,
    logging.ERROR,
    logging.WARNING,
    logging.INFO,
    logging.INFO,
    logging.DEBUG,
)
_VARYING = re.compile(r"\d+")
# What a broker that has just started, or just moved a coordinator, answers while it loads
# the coordinator's state: librdkafka retries by itself and says so ("...: retrying").
_LOADING = ("Coordinator load in progress", "Coordinator not available", "Not coordinator")


def admin_client_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` for an ``AdminClient``: with librdkafka's log lines silenced, not bridged.

    Nothing polls an admin client, so the lines its ``logger`` would be handed pile up
    unserved in its queue; and a line librdkafka logs from a broker thread before the
    binding has queued them reaches the logger outside any Python call, where the
    binding aborts the process (``CallState_get``). What an admin call meets comes back
    as its exception anyway, and the broker watch logs a lost cluster itself.
    """
    settings = {key: value for key, value in config.items() if key != "logger"}
    settings["log_level"] = 0  # librdkafka would print its lines to stderr otherwise
    return settings


def logging_level(syslog_level: int) -> int:
    """The logging level of a syslog level (0-7); out-of-range levels are clamped."""
    return _SYSLOG_LEVELS[min(max(syslog_level, 0), 7)]


def condition_of(message: str) -> str:
    """What stays the same when librdkafka repeats a line: the text without its numbers
    (timings and "N identical error(s) suppressed" change on every retry)."""
    return _VARYING.sub("#", message)


@dataclass
class _Seen:
    first_s: float
    message: str
    suppressed: int = 0

    def note(self) -> str:
        return f"repeated {self.suppressed} more time(s): {self.message}"


@dataclass
class RepeatSuppressor:
    """Decides which lines of one client are logged: a line whose condition was logged in
    the last ``window_s`` seconds is counted, not logged; the count is told when the
    condition is logged again, or when the client logs something else (it recovered)."""

    window_s: float = REPEAT_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, message: str) -> tuple[bool, list[str]]:
        """Whether to log ``message``, and notes about repeats to log before it."""
        key = condition_of(message)
        now = self.clock()
        with self._lock:
            notes: list[str] = []
            seen = self._seen.get(key)
            if seen is not None and now - seen.first_s < self.window_s:
                seen.suppressed += 1
                return False, notes
            if seen is not None and seen.suppressed:
                notes.append(seen.note())
            for other_key, other in self._seen.items():
                if other_key != key and other.suppressed:
                    notes.append(other.note())
                    other.suppressed = 0
            self._seen[key] = _Seen(now, message)
            return True, notes


class KafkaLogBridge:
    """A confluent-kafka ``logger``: one client's librdkafka lines, to ``sagas.kafka``.

    confluent-kafka calls ``log(level, "%s [%s] %s", facility, client_name, text)`` with
    a logging level it mapped from the syslog level already.
    """

    def __init__(self, logger: logging.Logger | None = None, window_s: float = REPEAT_WINDOW_S):
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.suppressor = RepeatSuppressor(window_s)

    def log(self, level: int, message: str, *args: object) -> None:
        """Log one librdkafka line, unless it repeats a condition logged just before.

        A warning that librdkafka is retrying while a coordinator loads is logged at INFO:
        nothing is wrong, and an operator watching warnings has nothing to do.
        """
        if len(args) == 3:
            facility, client, text = (str(arg) for arg in args)
            line = f"{client} {facility}: {text}"
        else:
            line = message % args if args else message
        if level == logging.WARNING and line.endswith("retrying") and _loading(line):
            level = logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        admitted, notes = self.suppressor.admit(line)
        for note in notes:
            self.logger.log(logging.INFO, "%s", note)
        if admitted:
            self.logger.log(level, "%s", line)


def _loading(line: str) -> bool:
    return any(condition in line for condition in _LOADING)
