"""Timer ids: which of a workflow's timers one is (its kind and the node or step it serves).

A workflow state keys its timers by the encoded id, ``"<kind>:<name>"``; that text is
what the state's changelog and the processor's due-time index hold, and what a
``timer_fired`` event names, so :meth:`TimerId.encode` must never change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from sagas.errors import SerializationError


class TimerKind(StrEnum):
    """What a timer is for; the value is its prefix in the encoded id."""

    STEP_DEADLINE = "d"
    """The timeout of a step's attempt in flight."""
    RETRY = "r"
    """The pause before a step's next attempt."""
    COMPENSATION_DEADLINE = "cd"
    """The timeout of a compensation's attempt in flight."""
    COMPENSATION_RETRY = "cr"
    """The pause before a compensation's next attempt."""
    SLEEP = "s"
    """A sleep node's duration."""
    WAIT = "w"
    """A wait node's timeout."""
    HEARTBEAT = "h"
    """The heartbeat deadline of a step's attempt in flight (moved by each heartbeat)."""
    CHILD_START = "cs"
    """How long a child saga's start may go unanswered before the status says so."""
    SCHEDULE_TO_START = "ss"
    """How long a step's attempt in flight may wait for a worker to start it."""
    SCHEDULE_TO_CLOSE = "sc"
    """The bound on all of a step's attempts, retry pauses included."""


_KINDS = {kind.value: kind for kind in TimerKind}


class TimerId(NamedTuple):
    """One timer of a workflow: its kind and the step or node it belongs to."""

    kind: TimerKind
    name: str

    def encode(self) -> str:
        """The id as the state, the due-time index and ``timer_fired`` events write it."""
        return timer_id(self.kind, self.name)

    @classmethod
    def decode(cls, text: str) -> TimerId:
        """The id ``encode`` wrote; raises ``SerializationError`` for any other text."""
        prefix, separator, name = text.partition(":")
        kind = _KINDS.get(prefix)
        if kind is None or not separator:
            raise SerializationError(f"not a timer id: {text!r}")
        return cls(kind, name)


def timer_id(kind: TimerKind, name: str) -> str:
    """The encoded id of the ``kind`` timer of ``name`` (what a state's ``timers`` keys hold)."""
    # A StrEnum member is its value as a str: plain concatenation is the fast path here.
    return kind + ":" + name


NODE_TIMERS = frozenset({TimerKind.SLEEP, TimerKind.WAIT})
"""Timers of a node the workflow is at (not of a step): a failure or cancel stops them."""

_NODE_PREFIXES = frozenset(kind.value for kind in NODE_TIMERS)


def node_of_timer(text: str) -> str | None:
    """The node an encoded sleep or wait timer id belongs to; ``None`` for a step's timer."""
    # Read for every status record: no TimerId is built on this path.
    prefix, _, name = text.partition(":")
    return name if prefix in _NODE_PREFIXES else None
