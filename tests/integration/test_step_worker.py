"""The step worker against a real broker: a slow call holds only its own workflow, and a
timed-out attempt's late answer is ignored by its attempt number."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer
from pydantic import BaseModel

from processors.runner import WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas import Retry, Saga, StepContext, StepKind
from sagas.client import SagaClient
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions
from sagas.events import Event, EventType, Origin, WorkflowStatus
from schemas import EventCodec
from topics.partitioning import partition_for


class Job(BaseModel):
    job_id: str
    slow_s: float = 0.0


FINISHED: dict[str, float] = {}
"""When each job's step finished (monotonic seconds)."""

jobs = Saga("slow_jobs", input=Job, version=1)


@jobs.step(kind=StepKind.PIVOT, timeout=timedelta(seconds=60))
async def work(ctx: StepContext[Job]) -> str:
    await asyncio.sleep(ctx.input.slow_s)
    FINISHED[ctx.input.job_id] = time.monotonic()
    return ctx.input.job_id


late = Saga("late_answers", input=Job, version=1)


@late.step(
    kind=StepKind.PIVOT,
    timeout=timedelta(seconds=1),
    retry=Retry(max_attempts=3, initial_interval=timedelta(milliseconds=100)),
)
async def answer_late_once(ctx: StepContext[Job]) -> str:
    if ctx.attempt == 1:
        # Outlives the 1 s timeout: the worker abandons the call at its deadline.
        await asyncio.sleep(2.5)
    return f"attempt-{ctx.attempt}"


@pytest.fixture
def deploy(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[[Saga[Job]], KafkaSettings]]:
    runners: list[WorkerRunner] = []

    def start(saga: Saga[Job]) -> KafkaSettings:
        kafka = KafkaSettings(
            bootstrap_servers=kafka_bootstrap, topic_prefix=unique_name("w") + "."
        )
        versions = compile_versions(saga)
        provision(versions, kafka)
        settings = ProcessorSettings(state_dir=tmp_path / saga.name)
        runner = WorkerRunner(versions, kafka, processor_settings=settings).start()
        runners.append(runner)
        runner.wait_ready()
        return kafka

    yield start
    for runner in runners:
        runner.stop()
    for runner in runners:
        runner.raise_errors()


def test_a_slow_call_does_not_stall_other_workflows_of_its_partition(
    deploy: Callable[[Saga[Job]], KafkaSettings],
) -> None:
    kafka = deploy(jobs)
    slow_id = "slow"
    # Workflows that share the slow one's partition of the command topic (3 partitions).
    target = partition_for(slow_id.encode(), 3)
    quick_ids = [
        f"quick-{n}" for n in range(200) if partition_for(f"quick-{n}".encode(), 3) == target
    ][:20]
    assert len(quick_ids) == 20
    with SagaClient(kafka) as client:
        client.start(jobs, Job(job_id=slow_id, slow_s=6.0), workflow_id=slow_id)
        time.sleep(0.5)  # the slow call is running
        for wid in quick_ids:
            client.start(jobs, Job(job_id=wid), workflow_id=wid, wait=False)
        client.flush()
        for wid in quick_ids:
            assert client.result(jobs, wid, timeout=60).status is WorkflowStatus.COMPLETED
        assert slow_id not in FINISHED, "every quick workflow finished while the slow one ran"
        assert client.result(jobs, slow_id, timeout=60).status is WorkflowStatus.COMPLETED
    assert all(FINISHED[wid] < FINISHED[slow_id] for wid in quick_ids)


def test_a_timed_out_attempts_late_answer_is_ignored(
    deploy: Callable[[Saga[Job]], KafkaSettings],
) -> None:
    kafka = deploy(late)
    with SagaClient(kafka) as client:
        wid = client.start(late, Job(job_id="j"))
        record = client.result(late, wid, timeout=60)
        assert record.status is WorkflowStatus.COMPLETED
        assert record.result is not None
        assert "attempt-2" in record.result
        # Our worker abandoned attempt 1 at its deadline and answered it failed; a
        # participant in another service may still answer it, late, as this one does.
        send_answer(kafka, wid, attempt=1, payload='"attempt-1"')
        deadline = time.monotonic() + 30
        history = read_history(kafka, late.name, wid)
        while not any(e.type is EventType.ANSWER_IGNORED for e in history):
            assert time.monotonic() < deadline, [e.type.value for e in history]
            time.sleep(0.5)
            history = read_history(kafka, late.name, wid)
        after = client.status(late, wid)
    kinds = [(e.type, e.attempt) for e in history if e.step == "answer_late_once"]
    assert (EventType.STEP_FAILED, 1) in kinds
    timed_out = next(e for e in history if e.type is EventType.STEP_FAILED)
    assert timed_out.error is not None
    assert "deadline" in timed_out.error.message or "Timeout" in timed_out.error.type
    assert (EventType.STEP_SUCCEEDED, 2) in kinds
    assert (EventType.STEP_SUCCEEDED, 1) in kinds  # the late answer arrived...
    assert (EventType.ANSWER_IGNORED, 1) in kinds  # ...and changed nothing
    assert after.status is WorkflowStatus.COMPLETED
    assert after.result == record.result


def send_answer(kafka: KafkaSettings, wid: str, *, attempt: int, payload: str) -> None:
    """Answer a command the way a participant written in any language does."""
    topic = f"{kafka.topic_prefix}{late.name}.events"
    event = Event(
        event_id=f"late-{wid}", workflow_id=wid, saga=late.name, version=1,
        type=EventType.STEP_SUCCEEDED, origin=Origin.WORKER, time_ms=int(time.time() * 1000),
        step="answer_late_once", attempt=attempt, payload=payload,
    )  # fmt: skip
    producer = Producer({**kafka.client_config(), "partitioner": "murmur2_random"})
    producer.produce(topic, EventCodec().encode(event), wid.encode())
    assert producer.flush(30) == 0
