"""Durable timers at scale: 10,000 sleeping workflows while the saga processor is SIGKILLed
and restarted twice.

Each sleeps 1-60 s at random (the lengths in ``timer_saga.SLEEP_SECONDS``). The saga
processor runs as ``sagas worker --role processor`` in its own process with a stable
instance id and state dir; the wake-up step runs in this process's step worker, which
records every run. The 10,000 are started at 2,000 a second
once a first workflow has completed; the kills come after the last start.

Lateness is the event log's ``timer_fired`` time minus the timer's due time. Its p99 is
checked on the timers due outside the restart windows: from just before each kill (a
timer due then may be in the transaction the kill aborts) until a few seconds after the
restart (process start, state restore, the backlog of timers that fell due meanwhile).
The figures are printed, per second of due time too.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from processors.runner import Role, WorkerRunner, provision
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import CommandKind, Event, EventType, WorkflowStatus, idempotency_key
from tests.integration.long_running import timer_saga
from tests.integration.long_running.event_log import read_events
from tests.integration.long_running.worker_process import WorkerProcess

WORKFLOWS = 10_000
START_RATE = 2000
"""Workflows started per second."""
KILL_AFTER_S = (7.0, 15.0)
"""When the processor is killed, counted from the first start sent."""
DOWN_S = 1.0
"""How long the processor stays dead before it is restarted."""
IN_FLIGHT_S = 0.5
"""Timers due this long before a kill may be in the transaction the kill aborts."""
RECOVERY_S = 4.0
"""How long after a restart timers may still fire late (start-up, restore, backlog)."""
MAX_P99_LATENESS_MS = 1000


@dataclass(frozen=True, slots=True)
class Timer:
    """One workflow's sleep as its event log tells it."""

    workflow_id: str
    due_ms: int
    fired_ms: list[int]


def _timer_of(workflow_id: str, events: list[Event]) -> Timer:
    started = [e for e in events if e.type is EventType.TIMER_STARTED]
    assert len(started) == 1, f"{workflow_id}: {len(started)} timer_started events"
    due = started[0].due_ms
    assert due is not None
    fired = [e.time_ms for e in events if e.type is EventType.TIMER_FIRED]
    return Timer(workflow_id, due, fired)


def _p99(values: list[int]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def test_every_timer_fires_once_and_on_time_across_processor_kills(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("") + ".")
    versions = compile_versions(timer_saga.saga)
    provision(versions, kafka)
    timer_saga.FIRED.clear()
    processor = WorkerProcess(
        "tests.integration.long_running.timer_saga:saga",
        kafka,
        role="processor",
        state_dir=tmp_path / "state",
        instance_id="napper-processor-0",
        log_path=tmp_path / "processor.log",
    )
    steps = WorkerRunner(versions, kafka, role=Role.STEPS).start()
    client = SagaClient(kafka)
    outages: list[tuple[float, float]] = []
    try:
        steps.wait_ready()
        processor.start()
        # A first workflow to completion shows the processor is up before the clock starts.
        warmup = client.start(timer_saga.saga, timer_saga.Nap(seconds=1), workflow_id="warmup")
        client.result(timer_saga.saga, warmup, timeout=120)
        rng = random.Random(5)
        sleeps = {f"nap-{i:05d}": rng.choice(timer_saga.SLEEP_SECONDS) for i in range(WORKFLOWS)}
        began = time.time()
        # Started at a steady rate, as a service would, rather than in one burst.
        for i, (wid, seconds) in enumerate(sleeps.items()):
            time.sleep(max(0.0, began + i / START_RATE - time.time()))
            client.start(timer_saga.saga, timer_saga.Nap(seconds=seconds), workflow_id=wid,
                         wait=False)  # fmt: skip
        client.flush()
        print(f"\n{WORKFLOWS} starts sent in {time.time() - began:.1f} s")
        for kill_after in KILL_AFTER_S:
            time.sleep(max(0.0, began + kill_after - time.time()))
            killed = time.time()
            processor.kill()
            time.sleep(DOWN_S)
            processor.start()
            outages.append((killed - IN_FLIGHT_S, time.time() + RECOVERY_S))
            print(f"processor killed at {killed - began:.1f} s and restarted")
        deadline = time.monotonic() + 180
        while True:
            statuses = client.statuses(timer_saga.saga)
            done = sum(
                1
                for wid in sleeps
                if wid in statuses and statuses[wid].status is WorkflowStatus.COMPLETED
            )
            if done == WORKFLOWS or time.monotonic() > deadline:
                break
            assert processor.running, (tmp_path / "processor.log").read_text()[-3000:]
            time.sleep(1.0)
        assert done == WORKFLOWS, f"{done} of {WORKFLOWS} workflows completed"
        print(f"all completed at {time.time() - began:.1f} s")
    finally:
        client.close()
        if processor.running:
            processor.stop()
        steps.stop()
    steps.raise_errors()

    events = read_events(kafka, timer_saga.saga.name)
    del events["warmup"]
    assert set(events) == set(sleeps)
    timers = [_timer_of(wid, wf_events) for wid, wf_events in events.items()]
    fired_twice = [t.workflow_id for t in timers if len(t.fired_ms) != 1]
    assert not fired_twice, f"timers not fired exactly once: {fired_twice[:10]}"
    early = [t.workflow_id for t in timers if t.fired_ms[0] < t.due_ms]
    assert not early, f"timers fired before they were due: {early[:10]}"
    for timer in timers:
        asked = sleeps[timer.workflow_id]
        started_ms = next(
            e.time_ms for e in events[timer.workflow_id] if e.type is EventType.STARTED
        )
        assert timer.due_ms - started_ms == asked * 1000, timer

    # The effect: the wake-up step ran once per workflow, never before its timer was due.
    due_by_key = {
        idempotency_key(t.workflow_id, "woke", CommandKind.ACTION): t.due_ms for t in timers
    }
    assert len(timer_saga.FIRED.pop(idempotency_key(warmup, "woke", CommandKind.ACTION))) == 1
    assert set(timer_saga.FIRED) == set(due_by_key)
    runs = {key: len(times) for key, times in timer_saga.FIRED.items() if len(times) != 1}
    assert not runs, f"wake-up steps that did not run exactly once: {list(runs.items())[:10]}"
    ran_early = [k for k, times in timer_saga.FIRED.items() if times[0] * 1000 < due_by_key[k]]
    assert not ran_early, f"wake-up steps that ran before the timer was due: {ran_early[:10]}"

    def in_outage(due_ms: int) -> bool:
        return any(start * 1000 <= due_ms <= end * 1000 for start, end in outages)

    by_second: defaultdict[int, list[int]] = defaultdict(list)
    for t in timers:
        by_second[int(t.due_ms / 1000 - began)].append(t.fired_ms[0] - t.due_ms)
    print("lateness by due second (count, max ms, outage?):")
    print(", ".join(f"{s}s: {len(v)}/{max(v)}{'*' if in_outage(int((began + s) * 1000)) else ''}"
                    for s, v in sorted(by_second.items())))  # fmt: skip
    steady = [t.fired_ms[0] - t.due_ms for t in timers if not in_outage(t.due_ms)]
    around = [t.fired_ms[0] - t.due_ms for t in timers if in_outage(t.due_ms)]
    p99 = _p99(steady)
    print(
        f"\n{WORKFLOWS} timers: {len(steady)} due outside the restarts: lateness p50 "
        f"{statistics.median(steady):.0f} ms, p99 {p99:.0f} ms, max {max(steady)} ms; "
        f"{len(around)} due during a kill/restart/recovery window: max {max(around, default=0)} ms"
    )
    assert len(steady) >= WORKFLOWS // 3, "too few timers fell outside the restart windows"
    assert p99 <= MAX_P99_LATENESS_MS
