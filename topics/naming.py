"""Names of a saga's topics and consumer groups, checked against Kafka's rules.

Per saga ``S`` (with the configured prefix ``P``):

- ``P S.events``, ``P S.state-changelog``, ``P S.status``, ``P S.dlq``;
- the saga processor's consumer group ``P S.processor``.

Command topics belong to a queue, not to a saga: ``P queue.<queue>.commands``,
consumed by the group ``P queue.<queue>.workers``. So a payments service runs
one consumer group for every step it serves, whichever sagas they come from;
by default a saga's steps go to a queue named like the saga. The ``.commands``
suffix keeps queue topics apart from saga topics whatever the names: a saga
named ``queue`` and a queue named ``events`` cannot both claim ``queue.events``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sagas.errors import ConfigurationError

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL = re.compile(r"[A-Za-z0-9._-]+")
_ILLEGAL_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")

EVENTS_SUFFIX = ".events"
CHANGELOG_SUFFIX = ".state-changelog"
STATUS_SUFFIX = ".status"
DLQ_SUFFIX = ".dlq"
PROCESSOR_GROUP_SUFFIX = ".processor"
QUEUE_PREFIX = "queue."
COMMANDS_SUFFIX = ".commands"
WORKERS_GROUP_SUFFIX = ".workers"


class InvalidNameError(ConfigurationError):
    """A saga, queue, prefix or the topic name made of them breaks Kafka's naming rules."""

    def __init__(self, message: str, *, name: str, what: str) -> None:
        super().__init__(message)
        self.name = name
        self.what = what


def check_name_part(value: str, what: str, *, allow_empty: bool = False) -> str:
    """``value`` if it may be part of a topic name; ``what`` names it in the error."""
    if not value:
        if allow_empty:
            return value
        raise InvalidNameError(f"{what} must not be empty", name=value, what=what)
    if not _LEGAL.fullmatch(value):
        bad = sorted(set(_ILLEGAL_CHARACTER.findall(value)))
        raise InvalidNameError(
            f"{what} {value!r} has characters Kafka does not allow in topic names:"
            f" {', '.join(repr(c) for c in bad)} (allowed: ASCII letters, digits, '.', '_', '-')",
            name=value,
            what=what,
        )
    return value


def check_topic_name(name: str) -> str:
    """``name`` if Kafka accepts it as a topic name."""
    check_name_part(name, "topic name")
    if name in (".", ".."):
        raise InvalidNameError(f"topic name {name!r} is reserved", name=name, what="topic name")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidNameError(
            f"topic name {name[:40]!r}... is {len(name)} characters long;"
            f" Kafka allows at most {MAX_TOPIC_NAME_LENGTH}",
            name=name,
            what="topic name",
        )
    return name


def command_topic(queue: str, prefix: str = "") -> str:
    """The topic a queue's commands are published on: ``<prefix>queue.<queue>.commands``."""
    check_name_part(prefix, "topic prefix", allow_empty=True)
    check_name_part(queue, "queue name")
    return check_topic_name(f"{prefix}{QUEUE_PREFIX}{queue}{COMMANDS_SUFFIX}")


def worker_group(queue: str, prefix: str = "") -> str:
    """The consumer group of a queue's step workers: ``<prefix>queue.<queue>.workers``."""
    check_name_part(prefix, "topic prefix", allow_empty=True)
    check_name_part(queue, "queue name")
    return check_topic_name(f"{prefix}{QUEUE_PREFIX}{queue}{WORKERS_GROUP_SUFFIX}")


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Every topic and consumer group name of one saga, validated when built."""

    saga: str
    prefix: str = ""

    def __post_init__(self) -> None:
        check_name_part(self.prefix, "topic prefix", allow_empty=True)
        check_name_part(self.saga, "saga name")
        # The longest suffix decides whether every name of the saga fits.
        check_topic_name(f"{self.prefix}{self.saga}{CHANGELOG_SUFFIX}")

    @property
    def events(self) -> str:
        """The saga's event log and source of truth, keyed by workflow id."""
        return f"{self.prefix}{self.saga}{EVENTS_SUFFIX}"

    @property
    def state_changelog(self) -> str:
        """The compacted changelog behind the saga processor's RocksDB store."""
        return f"{self.prefix}{self.saga}{CHANGELOG_SUFFIX}"

    @property
    def status(self) -> str:
        """The compacted topic of one status record per workflow."""
        return f"{self.prefix}{self.saga}{STATUS_SUFFIX}"

    @property
    def dlq(self) -> str:
        """The dead-letter queue of records that could not be read or applied."""
        return f"{self.prefix}{self.saga}{DLQ_SUFFIX}"

    @property
    def processor_group(self) -> str:
        """The consumer group of the saga processor."""
        return f"{self.prefix}{self.saga}{PROCESSOR_GROUP_SUFFIX}"

    @property
    def default_queue(self) -> str:
        """The queue of steps that name none: the saga's own name."""
        return self.saga

    def commands(self, queue: str | None = None) -> str:
        """The command topic of ``queue`` (default: the saga's own queue)."""
        return command_topic(self.default_queue if queue is None else queue, self.prefix)

    def worker_group(self, queue: str | None = None) -> str:
        """The consumer group of ``queue``'s step workers (default: the saga's own queue)."""
        return worker_group(self.default_queue if queue is None else queue, self.prefix)

    def saga_topics(self) -> tuple[str, str, str, str]:
        """The four topics that belong to the saga alone: events, changelog, status, DLQ."""
        return (self.events, self.state_changelog, self.status, self.dlq)
