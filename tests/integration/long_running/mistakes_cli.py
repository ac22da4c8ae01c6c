"""Running ``sagas`` commands in the test's process against a runtime's topics, and reading
back what they wrote."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from click.testing import CliRunner, Result

from sagas.cli import main
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.errors import SerializationError
from sagas.events import Event
from schemas import EventCodec
from tests.integration.long_running.event_log import read_topic
from topics.naming import TopicNames

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


def readable_history(kafka: KafkaSettings, saga: str, wid: str) -> list[Event]:
    """The workflow's events without the unreadable records a test wrote to park it
    (``read_history`` refuses those, naming them)."""
    codec = EventCodec()
    events = []
    for record in read_topic(kafka, TopicNames(saga, kafka.topic_prefix).events):
        if record.key == wid.encode():
            with contextlib.suppress(SerializationError):
                events.append(codec.decode(record.value))
    return events
