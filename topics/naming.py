"""Names of a saga's topics and consumer groups, checked against Kafka's rules.

Per saga ``S`` (with the configured prefix ``P``):

- ``P S.events``, ``P S.state-changelog``, ``P S.status``, ``P S.dlq``;
- the saga processor's consumer group ``P S.processor``.

Command topics belong to a queue, not to a saga: ``P queue.<queue>.commands``,
consumed by the group ``P queue.<queue>.workers``. So a payments service runs
one consumer group for every step it serves, whichever sagas they come from;
by default a saga's steps go to a queue named like the saga. Workers serving
several queues share one group named after all of them, sorted and joined by
``+`` (a character queue names cannot hold): ``P queue.inventory+payments.workers``.
The ``.commands`` suffix keeps queue topics apart from saga topics whatever the names: a saga
named ``queue`` and a queue named ``events`` cannot both claim ``queue.events``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sagas.errors import ConfigurationError

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL = re.compile(r"[A-Za-z0-9._-]+")
_ILLEGAL_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")

EVENTS_SUFFIX = ".events"
CHANGELOG_SUFFIX = ".state-changelog"
STATUS_SUFFIX = ".status"
DLQ_SUFFIX = ".dlq"
QUERY_ENDPOINTS_SUFFIX = ".query-endpoints"
PROCESSOR_GROUP_SUFFIX = ".processor"
QUEUE_PREFIX = "queue."
COMMANDS_SUFFIX = ".commands"
WORKERS_GROUP_SUFFIX = ".workers"
QUEUE_SEPARATOR = "+"
MAX_GROUP_NAME_LENGTH = 249


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


def worker_group(queues: str | Iterable[str], prefix: str = "") -> str:
    """The consumer group of step workers serving ``queues``: ``<prefix>queue.<q1>+<q2>.workers``.

    Named after every queue it serves (sorted, so the name is deterministic), not
    after the first one: an operator reading ``queue.inventory.workers`` would not
    guess that it also runs payments. One queue keeps the name it always had. A
    group renamed by this (a worker serving several queues) starts over from
    ``auto.offset.reset=earliest`` and would run again every command still in its
    topics: copy the old group's offsets to the new one before upgrading.
    """
    check_name_part(prefix, "topic prefix", allow_empty=True)
    names = sorted({queues} if isinstance(queues, str) else set(queues))
    if not names:
        raise InvalidNameError("a worker group needs at least one queue", name="", what="queues")
    for queue in names:
        check_name_part(queue, "queue name")
    group = f"{prefix}{QUEUE_PREFIX}{QUEUE_SEPARATOR.join(names)}{WORKERS_GROUP_SUFFIX}"
    if len(group) > MAX_GROUP_NAME_LENGTH:
        # Many long queue names: a digest keeps the name deterministic and within bounds.
        digest = hashlib.sha256(group.encode()).hexdigest()[:16]
        group = f"{prefix}{QUEUE_PREFIX}{digest}{WORKERS_GROUP_SUFFIX}"
    return group


def worker_group_queues(group: str, prefix: str = "") -> tuple[str, ...] | None:
    """The queues a worker group named by :func:`worker_group` serves; None for other groups."""
    head, tail = f"{prefix}{QUEUE_PREFIX}", WORKERS_GROUP_SUFFIX
    if not (group.startswith(head) and group.endswith(tail)) or len(group) <= len(head + tail):
        return None
    queues = tuple(group[len(head) : -len(tail)].split(QUEUE_SEPARATOR))
    if not all(queues) or any(_ILLEGAL_CHARACTER.search(queue) for queue in queues):
        return None
    return queues


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
        check_topic_name(f"{self.prefix}{self.saga}{QUERY_ENDPOINTS_SUFFIX}")

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
    def query_endpoints(self) -> str:
        """The compacted topic where processors say which partitions they answer for, where."""
        return f"{self.prefix}{self.saga}{QUERY_ENDPOINTS_SUFFIX}"

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

    def worker_group(self, queues: str | Iterable[str] | None = None) -> str:
        """The consumer group of workers serving ``queues`` (default: the saga's own queue)."""
        return worker_group(self.default_queue if queues is None else queues, self.prefix)

    def saga_topics(self) -> tuple[str, str, str, str]:
        """The four topics that belong to the saga alone: events, changelog, status, DLQ."""
        return (self.events, self.state_changelog, self.status, self.dlq)
