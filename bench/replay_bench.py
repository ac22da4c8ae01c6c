"""Measure how fast ``sagas replay`` folds an event log, in events per second.

Builds a realistic log of the example order saga with the plan itself (every input
handled, its decisions appended after it; each command answered, some retried, some
workflows left in flight), writes it to a fresh ``<prefix>order.events`` on the broker,
sets the processor group at its end, and times the replay's read-decode-fold pass
(:func:`processors.replay.fold_log`). It also times the fold of the same records held in
memory, which is what bounds the rate when the broker is not the limit.

    .venv/bin/python bench/replay_bench.py --bootstrap 127.0.0.1:19092 --workflows 20000
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import time
import uuid

from confluent_kafka import Producer

from examples import order_saga
from processors.commands import command_records
from processors.log_fold import PartitionFold, collection_paused
from processors.replay import fold_log
from processors.runner import provision
from sagas.config import KafkaSettings
from sagas.engine.execution import answer_event
from sagas.engine.versions import compile_versions
from sagas.events import Command, ErrorInfo, Event, EventType, Origin
from schemas import EventCodec
from topics.naming import TopicNames
from topics.offset_reset import reset_offsets
from topics.partitioning import partition_for

GOAL = 100_000


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("SAGAS_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="bootstrap servers of the broker (default: $SAGAS_BOOTSTRAP_SERVERS or :9092)",
    )
    parser.add_argument("--workflows", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true", help="print the in-memory fold's profile")
    return parser.parse_args()


def _log(workflows: int) -> list[Event]:
    """The events of ``workflows`` order sagas, in the order a processor appends them."""
    versions = compile_versions(order_saga.saga)
    plan = versions.newest
    reply = TopicNames(plan.name).events
    now = 1_700_000_000_000
    events: list[Event] = []
    for n in range(workflows):
        wid = f"order-{n:07d}"
        order = order_saga.OrderInput(
            order_id=wid, customer_email=f"c{n}@example.com", amount_cents=100 + n % 900,
            sku=f"sku-{n % 50}", quantity=1 + n % 3,
        )  # fmt: skip
        start = Event(uuid.uuid4().hex, wid, plan.name, 0, EventType.START_REQUESTED,
                      Origin.CLIENT, now, payload=order.model_dump_json())  # fmt: skip
        transition = plan.handle(None, start, now)
        events += [start, *transition.decisions]
        state, commands = transition.state, [c for _, c in command_records(transition, reply)]
        answered = 0
        while commands and answered < 2 + n % 4:  # some stay in flight
            command: Command = commands.pop(0)
            now += 3
            if n % 5 == 0 and command.attempt == 1:
                answer = answer_event(command, time_ms=now, error=ErrorInfo("Busy", "503"))
            else:
                answer = answer_event(command, time_ms=now, payload='{"ok": true}')
            transition = plan.handle(state, answer, now)
            events += [answer, *transition.decisions]
            state = transition.state
            commands += [c for _, c in command_records(transition, reply)]
            for timer_id in list(state.timers):
                if timer_id.startswith("retry:"):
                    fired = plan.handle(state, _fired(state, timer_id, now + 10), now + 10)
                    events += fired.decisions
                    state = fired.state
                    commands += [c for _, c in command_records(fired, reply)]
            answered += 1
    return events


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _fired(state: object, timer_id: str, now: int) -> Event:
    from sagas.engine.plan import timer_fired
    from sagas.engine.state import WorkflowState

    assert isinstance(state, WorkflowState)
    return timer_fired(state, timer_id, now)


def main() -> None:
    args = _parse_args()
    versions = compile_versions(order_saga.saga)
    kafka = KafkaSettings(
        bootstrap_servers=args.bootstrap, topic_prefix=f"bench-{uuid.uuid4().hex[:6]}."
    )
    provision(versions, kafka)
    names = TopicNames(versions.name, kafka.topic_prefix)
    started = time.perf_counter()
    events = _log(args.workflows)
    codec = EventCodec()
    records = [(e.workflow_id.encode(), codec.encode(e)) for e in events]
    print(f"built {len(records):,} events of {args.workflows:,} workflows in"
          f" {time.perf_counter() - started:.1f}s, under {kafka.topic_prefix!r}")  # fmt: skip

    producer = Producer({**kafka.client_config(), "linger.ms": 20, "batch.size": 1_000_000,
                         "compression.type": "lz4", "queue.buffering.max.messages": 2_000_000,
                         "partitioner": "murmur2_random"})  # fmt: skip
    for key, value in records:
        while True:
            try:
                producer.produce(names.events, value, key)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)
    reset_offsets(kafka.client_config(), names.processor_group, names.events, "latest")

    started, cpu = time.perf_counter(), _own_cpu()
    _, rebuilt = fold_log(versions, kafka)
    seconds = time.perf_counter() - started
    # The workers are the fork server's children, not this process's: each reports its own.
    cpu = _own_cpu() - cpu + sum(p.worker_cpu_s for p in rebuilt)
    folded = sum(p.events for p in rebuilt)
    workflows = sum(len(p.states) for p in rebuilt)
    rate = folded / seconds
    print(f"replay (read from Kafka, decode, fold): {folded:,} events, {workflows:,} workflows"
          f" in {seconds:.2f}s = {rate:,.0f} events/s (goal {GOAL:,}),"
          f" {cpu / folded * 1e6:.1f} µs CPU per event (this process and its workers),"
          f" load average {os.getloadavg()[0]:.2f}")  # fmt: skip

    partitions = 3
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(partitions)}
    for key, value in records:
        by_partition[partition_for(key, partitions)].append((key, value))

    def fold_in_memory() -> None:
        with collection_paused():
            for partition, held in by_partition.items():
                fold = PartitionFold(versions, codec, partition)
                for offset, (key, value) in enumerate(held):
                    fold.add(offset, key, value)
                fold.finish()

    # CPU time beside wall time: on a shared machine the wall rate moves with the load.
    started, cpu = time.perf_counter(), time.process_time()
    fold_in_memory()
    memory, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"fold of the same records in memory: {len(records) / memory:,.0f} events/s,"
          f" {cpu / len(records) * 1e6:.1f} µs CPU per event")  # fmt: skip
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(fold_in_memory)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(18)


if __name__ == "__main__":
    main()
