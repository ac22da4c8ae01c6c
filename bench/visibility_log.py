"""The event log of many visibility-bench orders, decided by the saga's own plan.

Workflow ``n`` is one of three kinds, fixed by ``n`` so that a benchmark knows what each
holds without asking: most complete, one in twenty is compensated (its pivot fails for
good, the charge is refunded), and one in a hundred is still in flight (its charge
scheduled, not yet answered). Its customer and total, its two search attributes, are
spread so that every customer has workflows of every kind.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from enum import Enum

from confluent_kafka import Producer

from bench.visibility_saga import VisOrder, saga
from processors.commands import command_records
from sagas.config import KafkaSettings
from sagas.engine.execution import answer_event
from sagas.engine.versions import compile_versions
from sagas.events import Command, ErrorInfo, Event, EventType, Origin
from schemas import EventCodec
from topics.naming import TopicNames

CUSTOMERS = 1000
VERSIONS = compile_versions(saga)


class Kind(Enum):
    """What a held workflow's log leaves it as."""

    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    RUNNING = "RUNNING"


def kind_of(n: int) -> Kind:
    """The kind of workflow ``n``: 1% in flight, 5% compensated, the rest completed."""
    if n % 100 == 37:
        return Kind.RUNNING
    if n % 20 == 1:
        return Kind.COMPENSATED
    return Kind.COMPLETED


def workflow_id(n: int) -> str:
    return f"vis-{n:08d}"


def customer_of(n: int) -> str:
    """Workflow ``n``'s customer: a multiplicative hash, so that the in-flight workflows
    (every hundredth) are not all one customer's."""
    return f"c-{((n * 2654435761) >> 12) % CUSTOMERS}"


def total_of(n: int) -> int:
    return (n * 7) % 1000


def order_of(n: int) -> VisOrder:
    return VisOrder(order_id=workflow_id(n), customer_id=customer_of(n), order_total=total_of(n))


def workflow_events(n: int, started_ms: int) -> Iterator[Event]:
    """Every event of workflow ``n`` in the order a processor appends them: each input,
    then the decisions the plan takes on it."""
    plan = VERSIONS.newest
    wid = workflow_id(n)
    kind = kind_of(n)
    now = started_ms
    start = Event(uuid.uuid4().hex, wid, plan.name, 0, EventType.START_REQUESTED,
                  Origin.CLIENT, now, payload=order_of(n).model_dump_json())  # fmt: skip
    transition = plan.handle(None, start, now)
    yield start
    yield from transition.decisions
    state = transition.state
    pending: list[Command] = [c for _, c in command_records(transition, "")]
    while pending and kind is not Kind.RUNNING:
        command = pending.pop(0)
        now += 3
        if command.step == "ship" and kind is Kind.COMPENSATED:
            error = ErrorInfo("OutOfStock", "no stock left", non_retryable=True)
            answer = answer_event(command, time_ms=now, error=error)
        else:
            answer = answer_event(command, time_ms=now, payload=str(total_of(n)))
        transition = plan.handle(state, answer, now)
        yield answer
        yield from transition.decisions
        state = transition.state
        pending += [c for _, c in command_records(transition, "")]


def write_log(kafka: KafkaSettings, workflows: int, *, processes: int = 2) -> int:
    """Write the log of ``workflows`` orders to the saga's event topic, the last started
    now and each a millisecond after the one before; returns the number of events.

    The plan's decisions cost most of the time: ``processes`` share the workflows out.
    """
    newest_ms = int(time.time() * 1000)
    context = multiprocessing.get_context("spawn")  # no fork of a process with librdkafka
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        parts = [
            pool.submit(write_part, kafka, workflows, newest_ms, part, processes)
            for part in range(processes)
        ]
        return sum(part.result() for part in parts)


def write_part(kafka: KafkaSettings, workflows: int, newest_ms: int, part: int, parts: int) -> int:
    """Write the log of every workflow ``n`` with ``n % parts == part``; its event count."""
    topic = TopicNames(VERSIONS.name, kafka.topic_prefix).events
    codec = EventCodec()
    producer = Producer({**kafka.client_config(), "linger.ms": 50, "batch.size": 1_000_000,
                         "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000,
                         "partitioner": "murmur2_random"})  # fmt: skip
    first_ms = newest_ms - workflows
    produce, encode, written = producer.produce, codec.encode, 0
    for n in range(part, workflows, parts):
        key = workflow_id(n).encode()
        for event in workflow_events(n, first_ms + n):
            value = encode(event)
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.1)
            written += 1
        if n % 10_000 < parts:
            producer.poll(0)
    if producer.flush(300):
        raise RuntimeError(f"the log of {workflows:,} workflows was not acknowledged in 300 s")
    return written
