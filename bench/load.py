"""Load for the benchmarks: start sagas as any producer would, watch their status records.

Starts are ``start_requested`` events written straight to the saga's event topic in its
documented Avro (as a service in any language would), so the time each is acknowledged
by the broker can be measured per record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, Message, Producer, TopicPartition

from sagas.config import KafkaSettings
from sagas.events import Event, EventType, Origin, StatusRecord
from schemas import EventCodec, StatusCodec
from topics.consumer_reads import poll_batch
from topics.naming import TopicNames


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Tracking:
    """What the generator knows of the workflows it started."""

    intended_ms: dict[str, float] = field(default_factory=dict)
    acked_ms: list[float] = field(default_factory=list)
    completed_ms: list[float] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)


class LoadGenerator:
    """Starts workflows of one saga and counts their ends from the status topic."""

    def __init__(self, kafka: KafkaSettings, saga: str, make_input: Callable[[int], str]) -> None:
        self.names = TopicNames(saga, kafka.topic_prefix)
        self.saga = saga
        self._make_input = make_input
        self._codec = EventCodec()
        self._status = StatusCodec()
        self._producer = Producer(
            {**kafka.client_config(), "partitioner": "murmur2_random", "linger.ms": 1,
             "enable.idempotence": True, "acks": "all"}
        )  # fmt: skip
        self._consumer = Consumer(
            {**kafka.client_config(), "group.id": f"bench-{uuid.uuid4().hex[:6]}",
             "isolation.level": "read_committed", "enable.auto.commit": False,
             "fetch.wait.max.ms": 5}
        )  # fmt: skip
        metadata = self._consumer.list_topics(self.names.status, timeout=30)
        partitions = metadata.topics[self.names.status].partitions
        self._consumer.assign(
            [TopicPartition(self.names.status, p, OFFSET_END) for p in partitions]
        )
        self.tracking = Tracking()
        self._count = 0

    def start(self, intended_ms: float | None = None, *, version: int = 0) -> str:
        """Send one start; its ack latency is recorded against ``intended_ms`` (default: now).

        ``version`` 0 starts the newest version of the saga.
        """
        self._count += 1
        wid = f"w{self._count}-{uuid.uuid4().hex[:8]}"
        now = time.time() * 1000
        intended = now if intended_ms is None else intended_ms
        self.tracking.intended_ms[wid] = intended
        event = Event(
            event_id=uuid.uuid4().hex, workflow_id=wid, saga=self.saga, version=version,
            type=EventType.START_REQUESTED, origin=Origin.CLIENT, time_ms=int(now),
            payload=self._make_input(self._count),
        )  # fmt: skip
        acked = self.tracking.acked_ms

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                acked.append(time.time() * 1000 - intended)

        while True:
            try:
                self._producer.produce(self.names.events, self._codec.encode(event), wid.encode(),
                                       on_delivery=on_delivery)  # fmt: skip
                break
            except BufferError:
                self._producer.poll(0.01)
        return wid

    def poll_ends(self, timeout: float) -> list[StatusRecord]:
        """Read status records for up to ``timeout`` s; return the final ones of our workflows."""
        self._producer.poll(0)
        ended = []
        now = time.time() * 1000
        for message in poll_batch(self._consumer, 5000, timeout):
            value = message.value()
            if message.error() is not None or value is None:
                continue
            record = self._status.decode(value)
            if not record.status.is_final or record.workflow_id in self.tracking.ended:
                continue
            intended = self.tracking.intended_ms.get(record.workflow_id)
            if intended is None:
                continue
            self.tracking.ended[record.workflow_id] = record.status.value
            self.tracking.completed_ms.append(now - intended)
            ended.append(record)
        return ended

    def closed_loop(self, in_flight: int, warmup_s: float, measure_s: float) -> dict[str, Any]:
        """Keep ``in_flight`` workflows running; completed sagas/s over the measured window."""
        for _ in range(in_flight):
            self.start()
        self._producer.flush(30)
        begin = time.monotonic()
        window_start = begin + warmup_s
        window_end = window_start + measure_s
        counted = total = 0
        while (now := time.monotonic()) < window_end:
            ends = self.poll_ends(0.05)
            for _ in ends:
                self.start()
            total += len(ends)
            if now >= window_start:
                counted += len(ends)
        self._producer.flush(30)
        return {
            "in_flight": in_flight,
            "completed_per_s": counted / measure_s,
            "window_s": measure_s,
            "completed_total": total,
        }

    def open_loop(self, rate: float, duration_s: float, drain_s: float = 20.0) -> dict[str, Any]:
        """Start workflows at ``rate``/s on a fixed schedule; latencies from intended times."""
        self.tracking = Tracking()
        begin_ms = time.time() * 1000
        total = int(rate * duration_s)
        sent = 0
        while sent < total:
            due_ms = begin_ms + sent * 1000.0 / rate
            now_ms = time.time() * 1000
            if now_ms >= due_ms:
                # Latency counts from when the start was due, not when it was sent: a
                # stalled sender must not hide the stall (coordinated omission).
                self.start(intended_ms=due_ms)
                sent += 1
                continue
            self.poll_ends(min(0.005, (due_ms - now_ms) / 1000))
        self._producer.flush(30)
        deadline = time.monotonic() + drain_s
        while len(self.tracking.ended) < total and time.monotonic() < deadline:
            self.poll_ends(0.05)
        t = self.tracking
        return {
            "rate_per_s": rate,
            "started": total,
            "ended": len(t.ended),
            "start_ack_ms": {
                "p50": percentile(t.acked_ms, 0.5),
                "p99": percentile(t.acked_ms, 0.99),
            },
            "start_to_end_ms": {
                "p50": percentile(t.completed_ms, 0.5),
                "p99": percentile(t.completed_ms, 0.99),
            },
        }

    def flush(self) -> None:
        """Wait until every start sent so far is acknowledged."""
        while self._producer.flush(1.0):
            self.poll_ends(0)

    def close(self) -> None:
        """Flush and release the clients."""
        self._producer.flush(30)
        self._consumer.close()
