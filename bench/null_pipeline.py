"""The physical limit: the saga's record flow with the same transactions and no saga logic.

Per saga, as the 4-step saga moves them: a start record in; the null processor answers
every input with the same records the saga processor writes (two decisions for the
start, one per answer, a command per step, one status and one changelog record per
input), batching consumed records into one transaction with their offsets; the null
worker answers each command as the step worker does, with an idempotent producer, and
commits a command's offset once its answer is acknowledged. Payloads are fixed bytes, so
what remains is the cost of moving the records through Kafka exactly once.

Its latency at a fixed arrival rate is measured as kafka-sagas' is: start to completed,
and dispatch (a command's creation to the moment a worker has it), which the null worker
writes into its answer for the load generator to read.
"""

from __future__ import annotations

import functools
import sys
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from topics.consumer_reads import poll_batch

STEPS = 4
_DECISION = [("sagas.origin", b"processor")]
_PAYLOAD = b"x" * 120  # about the size of an encoded event


def topics(prefix: str) -> dict[str, str]:
    return {name: f"{prefix}null.{name}" for name in ("events", "commands", "status", "changelog")}


def create_topics(bootstrap: str, prefix: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1) for name in topics(prefix).values()]
    )
    for future in futures.values():
        future.result(30)


def _consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
        "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10,
    })  # fmt: skip
    consumer.subscribe([topic])
    return consumer


def _producer(bootstrap: str, txid: str) -> Producer:
    producer = Producer({
        "bootstrap.servers": bootstrap, "transactional.id": txid, "linger.ms": 2,
        "partitioner": "murmur2_random", "transaction.timeout.ms": 15000,
        "retry.backoff.ms": 5, "retry.backoff.max.ms": 50,  # as the runtime's producers
    })  # fmt: skip
    producer.init_transactions(30)
    return producer


def run_processor(bootstrap: str, prefix: str) -> None:
    """Consume events; for each input write decisions, a command, status and changelog."""
    names = topics(prefix)
    consumer = _consumer(bootstrap, f"{prefix}null-processor", names["events"])
    producer = _producer(bootstrap, f"{prefix}null-processor")
    produce = producer.produce
    while True:
        messages = poll_batch(consumer, 5000, 0.02)
        if not messages:
            producer.poll(0)
            continue
        producer.begin_transaction()
        last: dict[int, int] = {}
        for message in messages:
            if message.error() is not None:
                continue
            partition, offset = message.partition(), message.offset()
            assert partition is not None
            assert offset is not None
            last[partition] = offset
            headers = message.headers()
            if headers and headers[0] == _DECISION[0]:
                continue  # a decision read back
            key, value = message.key(), message.value() or b""
            step = 0 if value == b"start" else int(value.split(b":")[1])
            decisions = 2 if step == 0 else 1
            for _ in range(decisions):
                produce(names["events"], _PAYLOAD, key, partition=partition, headers=_DECISION)
            if step < STEPS:
                produce(names["commands"], f"cmd:{step + 1}".encode(), key)
            status = b"done" if step == STEPS else b"running"
            produce(names["status"], status, key)
            produce(names["changelog"], _PAYLOAD, key, partition=partition)
        offsets = [TopicPartition(names["events"], p, o + 1) for p, o in last.items()]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)


def run_worker(bootstrap: str, prefix: str) -> None:
    """Answer every command at once; commit its offset once the answer is acknowledged."""
    names = topics(prefix)
    consumer = _consumer(bootstrap, f"{prefix}null-worker", names["commands"])
    producer = Producer({
        "bootstrap.servers": bootstrap, "linger.ms": 1, "partitioner": "murmur2_random",
        "enable.idempotence": True, "acks": "all",
    })  # fmt: skip
    acked: dict[tuple[str, int], int] = {}

    def delivered(place: tuple[str, int, int], error: KafkaError | None, _: Message) -> None:
        if error is None:
            topic, partition, offset = place
            acked[topic, partition] = max(acked.get((topic, partition), -1), offset)

    last_commit = time.monotonic()
    while True:
        messages = poll_batch(consumer, 5000, 0.002 if acked or len(producer) else 0.02)
        for message in messages:
            if message.error() is not None:
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None
            assert partition is not None
            assert offset is not None
            dispatch_us = time.time_ns() // 1000 - message.timestamp()[1] * 1000
            step = (message.value() or b"cmd:0").split(b":")[1]
            producer.produce(
                names["events"], b"answer:" + step + b":" + str(dispatch_us).encode(),
                message.key(), on_delivery=functools.partial(delivered, (topic, partition, offset)),
            )  # fmt: skip
        producer.poll(0)
        if acked and time.monotonic() - last_commit >= 0.02:
            offsets = [TopicPartition(t, p, o + 1) for (t, p), o in acked.items()]
            consumer.commit(offsets=offsets, asynchronous=True)
            acked.clear()
            last_commit = time.monotonic()


def closed_loop(
    bootstrap: str, prefix: str, in_flight: int, warmup_s: float, measure_s: float
) -> dict[str, Any]:
    """Keep ``in_flight`` null sagas going; completed per second over the window."""
    names = topics(prefix)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1,
                         "partitioner": "murmur2_random", "enable.idempotence": True})  # fmt: skip
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}null-load",
                         "isolation.level": "read_committed", "fetch.wait.max.ms": 5})  # fmt: skip
    partitions = (
        consumer.list_topics(names["status"], timeout=30).topics[names["status"]].partitions
    )
    consumer.assign([TopicPartition(names["status"], p, OFFSET_END) for p in partitions])

    def start() -> None:
        producer.produce(names["events"], b"start", uuid.uuid4().hex.encode())

    for _ in range(in_flight):
        start()
    producer.flush(30)
    window_start = time.monotonic() + warmup_s
    window_end = window_start + measure_s
    counted = total = 0
    while (now := time.monotonic()) < window_end:
        producer.poll(0)
        done = sum(
            1 for m in consumer.consume(5000, 0.05) if m.error() is None and m.value() == b"done"
        )
        for _ in range(done):
            start()
        total += done
        if now >= window_start:
            counted += done
    consumer.close()
    producer.flush(30)
    return {
        "in_flight": in_flight,
        "completed_per_s": counted / measure_s,
        "window_s": measure_s,
        "completed_total": total,
    }


def open_loop(bootstrap: str, prefix: str, rate: float, duration_s: float) -> dict[str, Any]:
    """Start null sagas at ``rate``/s; start-to-completed and dispatch latencies (ms)."""
    names = topics(prefix)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1,
                         "partitioner": "murmur2_random", "enable.idempotence": True})  # fmt: skip
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}null-watch",
                         "isolation.level": "read_committed", "fetch.wait.max.ms": 5})  # fmt: skip
    assignment = []
    for topic in (names["status"], names["events"]):
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        assignment += [TopicPartition(topic, p, OFFSET_END) for p in partitions]
    consumer.assign(assignment)
    time.sleep(1.0)  # the assignment takes its end offsets before the first start is sent
    intended: dict[bytes, float] = {}
    completed: list[float] = []
    dispatch: list[float] = []

    def read(timeout: float) -> None:
        now = time.time() * 1000
        for m in consumer.consume(5000, timeout):
            value = m.value()
            if m.error() is not None or value is None:
                continue
            if value == b"done":
                began = intended.pop(m.key() or b"", None)
                if began is not None:
                    completed.append(now - began)
            elif value.startswith(b"answer:") and (m.key() or b"") in intended:
                dispatch.append(int(value.split(b":")[2]) / 1000)

    total = int(rate * duration_s)
    begin_ms = time.time() * 1000
    sent = 0
    while sent < total:
        due_ms = begin_ms + sent * 1000.0 / rate
        now_ms = time.time() * 1000
        if now_ms >= due_ms:
            key = uuid.uuid4().hex.encode()
            intended[key] = due_ms  # from when it was due (no coordinated omission)
            producer.produce(names["events"], b"start", key)
            producer.poll(0)
            sent += 1
            continue
        read(min(0.005, (due_ms - now_ms) / 1000))
    producer.flush(30)
    deadline = time.monotonic() + 20
    while intended and time.monotonic() < deadline:
        read(0.05)
    consumer.close()
    return {
        "rate_per_s": rate,
        "started": total,
        "ended": len(completed),
        "start_to_end_ms": {"p50": _quantile(completed, 0.5), "p99": _quantile(completed, 0.99)},
        "dispatch_ms": {"p50": _quantile(dispatch, 0.5), "p99": _quantile(dispatch, 0.99)},
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


if __name__ == "__main__":
    role, bootstrap_servers, topic_prefix = sys.argv[1:4]
    {"processor": run_processor, "worker": run_worker}[role](bootstrap_servers, topic_prefix)
