"""CPU cost of the saga processor's own work per saga, without Kafka: decode, apply,
decide, encode, stage state — the part of the hot path that is kafka-sagas' code.

Runs the 4-step bench saga for N workflows through ``PartitionBatch`` on the memory
store, answering every command as a step worker would, in batches as the processor
forms them under load, and prints µs per saga and per input event.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
import uuid

from bench.bench_saga import BenchOrder, saga
from processors.metrics import Metrics
from processors.saga_batch import PartitionBatch
from processors.saga_processor import codecs_for, routing_for
from processors.store.memory import MemoryPartitionStore
from sagas.config import KafkaSettings
from sagas.events import Event, EventType, Origin
from sagas.execution import answer_event
from sagas.state import WorkflowState
from sagas.versions import compile_versions
from schemas import CommandCodec


def run(workflows: int, batch_size: int) -> tuple[float, int]:
    """CPU seconds spent and input events applied for ``workflows`` complete sagas."""
    versions = compile_versions(saga)
    routing = routing_for(versions, "")
    codecs = codecs_for(KafkaSettings(), routing)
    commands = CommandCodec()
    store = MemoryPartitionStore(0)
    cache: dict[str, WorkflowState] = {}  # as the processor keeps them between batches
    parked: set[str] = set()
    pending: list[tuple[bytes, bytes]] = []  # (key, value), as in the log
    for n in range(workflows):
        start = Event(
            event_id=uuid.uuid4().hex, workflow_id=f"w{n}", saga=saga.name, version=0,
            type=EventType.START_REQUESTED, origin=Origin.CLIENT, time_ms=0,
            payload=BenchOrder(order_id=str(n), amount_cents=100).model_dump_json(),
        )  # fmt: skip
        pending.append((start.workflow_id.encode(), codecs.event.encode(start)))
    inputs = 0
    offset = 0
    elapsed = 0.0
    command_topics = {routing.command_topic(q) for q in versions.queues}
    while pending:
        batch_inputs, pending = pending[:batch_size], pending[batch_size:]
        began = time.process_time()
        batch = PartitionBatch(
            routing=routing, codecs=codecs, versions=versions, store=store, partition=0,
            partitions=1, now_ms=1, metrics=Metrics(), cache=cache, parked=parked,
        )  # fmt: skip
        for key, value in batch_inputs:
            batch.apply_record(offset, key, value)
            offset += 1
        changelog = batch.finish()
        batch.txn.commit(offset)
        cache.update(batch.changed_states())
        elapsed += time.process_time() - began
        inputs += len(batch_inputs)
        del changelog
        # The step worker's part (not timed): answer every command with success.
        for record in batch.outgoing:
            if record.topic in command_topics and record.value is not None:
                command = commands.decode(record.value)
                answer = answer_event(command, time_ms=1, payload='{"ref":"x"}')
                pending.append((answer.workflow_id.encode(), codecs.event.encode(answer)))
    return elapsed, inputs


def main() -> None:
    workflows = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    profile = "--profile" in sys.argv
    run(500, 500)  # warm up
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    elapsed, inputs = run(workflows, 500)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    print(f"{workflows} sagas, {inputs} input events: {elapsed * 1e6 / workflows:.0f} µs/saga, "
          f"{elapsed * 1e6 / inputs:.1f} µs/event")  # fmt: skip


if __name__ == "__main__":
    main()
