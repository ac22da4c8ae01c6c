"""Starting a saga processor or step worker over as a fresh group member after its producer
or consumer was fenced or failed fatally, instead of leaving the process dead or frozen.

A zombie (a process stopped past its session and transaction timeouts, then resumed) finds
its transaction aborted and its member removed; a consumer can also be fenced by its own
static id after a coordinator failover. Neither client can be used again, but nothing it
wrote became visible, so closing both and starting over (init transactions under the same
transactional id, subscribe, restore the assigned partitions) is safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException

from sagas.errors import MemberFencedError

log = logging.getLogger(__name__)

MAX_RESTARTS = 10
"""Restarts in a row, each soon after the one before, before the process gives up."""
STEADY_S = 60.0
"""A member that ran this long before it failed counts its restarts from one again."""

_FENCING = frozenset(
    {
        KafkaError._FATAL,
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)


def is_member_failure(error: object) -> bool:
    """Whether a librdkafka error leaves the client unusable: fatal, or a fencing."""
    if isinstance(error, KafkaException):
        error = error.args[0] if error.args else None
    if not isinstance(error, KafkaError):
        return False
    return error.fatal() or error.code() in _FENCING


def run_restarting(
    what: str,
    run_once: Callable[[], None],
    stop: threading.Event,
    *,
    first_pause_s: float = 0.5,
) -> None:
    """Call ``run_once`` until it returns; after a :class:`MemberFencedError` call it again
    (it must build new clients), after a pause that doubles with each restart in a row,
    unless ``stop`` is set meanwhile."""
    restarts = 0
    while True:
        began = time.monotonic()
        try:
            run_once()
            return
        except MemberFencedError as exc:
            if stop.is_set():
                return
            restarts = 1 if time.monotonic() - began >= STEADY_S else restarts + 1
            if restarts > MAX_RESTARTS:
                raise
            delay = min(10.0, first_pause_s * 2 ** (restarts - 1))
            log.warning(
                "%s: %s; closing its producer and consumer and starting over as a fresh"
                " member in %.1f s (restart %d)",
                what,
                exc,
                delay,
                restarts,
            )
            if stop.wait(delay):
                return
