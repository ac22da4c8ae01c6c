"""Running ``sagas`` commands in the test's process against a runtime's topics, and reading
back what they wrote."""

from __future__ import annotations

import time
from collections.abc import Callable

from click.testing import CliRunner, Result

from sagas.cli import main
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.events import Event

MODULE = "tests.integration.long_running.mistakes_saga"


def sagas(kafka: KafkaSettings, *args: str) -> Result:
    """Run ``sagas ARGS`` on the runtime's broker and topic prefix."""
    env = {"SAGAS_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "SAGAS_TOPIC_PREFIX": kafka.topic_prefix, "SAGAS_SCHEMA_REGISTRY_URL": None}  # fmt: skip
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def history_until(
    kafka: KafkaSettings, saga: str, wid: str, done: Callable[[list[Event]], bool]
) -> list[Event]:
    """The workflow's history once ``done`` holds for it (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        history = read_history(kafka, saga, wid)
        if done(history):
            return history
        assert time.monotonic() < deadline, [e.type.value for e in history]
        time.sleep(0.3)


def has(type_: object) -> Callable[[list[Event]], bool]:
    """Whether a history holds an event of ``type_``."""
    return lambda history: any(e.type is type_ for e in history)
