"""The step worker: run commands of one or more queues, answer them on the saga's log.

Commands run concurrently (up to ``max_concurrency``), except that the commands of one
workflow's step (its attempts, then its compensation) run one after another, in order;
the saga itself sends a workflow's next step only after the previous one's answer, and
the steps of a parallel group run at once. Each answer is sent as soon as its action
returns, by an idempotent producer (``acks=all``), and a command's offset is committed
only after its answer is acknowledged: an offset is never committed before its answer is
in the log. Actions run at least once: after a crash, the commands past the committed
offset run again (even those whose answers got through), and the saga processor drops
the duplicate answers by step and attempt. No transaction is needed, so an answer is
readable the moment the broker has it, instead of one transaction commit later.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from processors.fresh_member import is_member_failure, run_restarting
from processors.instance import claim_instance, leave_and_close
from processors.keyed_queue import KeyedQueue
from processors.metrics import Metrics
from processors.partition_progress import PartitionProgress
from processors.settings import DEFAULT_STATE_DIR, WorkerSettings
from processors.step_processes import StepProcessPool, default_pool_size
from sagas.config import KafkaSettings
from sagas.engine.execution import HeartbeatSender, StepFunctions, answer_event, run_command
from sagas.engine.versions import SagaVersions
from sagas.errors import KafkaUnavailableError, MemberFencedError, SagaError, SerializationError
from sagas.events import Command, CommandKind, ErrorInfo, Event
from schemas.deployment_codecs import command_codec, event_codec
from topics.client_configs import consumer_config, producer_config
from topics.consumer_reads import poll_batch
from topics.naming import command_topic, worker_group

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Work:
    topic: str
    partition: int
    offset: int
    epoch: int
    command: Command
    superseded: bool = False
    """A later attempt of the same step and kind has arrived: this one is stale."""
    heartbeats: HeartbeatSender | None = None
    """The running attempt's heartbeats, through which a stale one is ended."""


class StepWorker:
    """Runs the actions of ``queues`` for the given sagas (every version deployed here)."""

    def __init__(
        self,
        sagas: Iterable[SagaVersions],
        queues: Iterable[str],
        kafka: KafkaSettings,
        settings: WorkerSettings | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.kafka = kafka
        self.settings = settings or WorkerSettings()
        self.metrics = metrics or Metrics()
        self.queues = sorted(set(queues))
        if not self.queues:
            raise SagaError("a step worker needs at least one queue")
        self._plans: dict[tuple[str, int], StepFunctions] = {}
        for versions in sagas:
            for version, functions in versions.functions.items():
                self._plans[versions.name, version] = functions
            for plan in versions.plans.values():
                for step in plan.steps.values():
                    objective = self.settings.dispatch_objective_ms or step.dispatch_objective_ms
                    if step.queue in self.queues and objective is not None:
                        self.metrics.dispatch_objective(versions.name, step.name, objective / 1000)
        self._topics = {command_topic(q, kafka.topic_prefix): q for q in self.queues}
        self.topics = tuple(self._topics)
        """The command topics this worker consumes."""
        self.group = worker_group(self.queues, kafka.topic_prefix)
        """The consumer group, named after every queue it serves."""
        self._commands = {topic: command_codec(kafka, topic) for topic in self._topics}
        self._events = functools.cache(lambda topic: event_codec(kafka, topic))
        self._stop = threading.Event()
        self._closing = False
        self._progress: dict[tuple[str, int], PartitionProgress] = {}
        self._epoch: dict[tuple[str, int], int] = {}
        # Commands queue behind the earlier ones of the same workflow and step (attempts, then
        # the compensation): the saga sends the next step only after this one's answer,
        # and steps of a parallel group are meant to run at once.
        self._queue: KeyedQueue[tuple[str, str], _Work] = KeyedQueue(self.settings.max_concurrency)
        self._unacked = 0
        """Answers sent whose delivery reports have not come back yet."""
        self._delivery_failed = False
        self._buffered = 0
        self._paused = False
        self._dirty = False
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._pool: StepProcessPool | None = None
        self.ready = threading.Event()
        """Set once the worker has its first assignment."""

    def stop(self) -> None:
        """Ask :meth:`run` to return; commands in flight are not answered (they run again)."""
        self._stop.set()

    def run(self) -> None:
        """Run until :meth:`stop` is called."""
        claim = claim_instance(
            self.settings.state_dir or DEFAULT_STATE_DIR, self.group, "steps",
            queues=self.queues, explicit=self.settings.instance_id,
        )  # fmt: skip
        try:
            run_restarting(
                f"step worker {claim.instance_id}",
                lambda: asyncio.run(self._run(claim.instance_id)),
                self._stop,
            )
        finally:
            claim.release()

    def _forget_partitions(self) -> None:
        """Start as a member that owns nothing; commands not answered yet run again."""
        self._progress.clear()
        self._queue.clear()
        self._buffered = self._unacked = 0
        self._paused = self._dirty = self._delivery_failed = self._closing = False

    async def _run(self, instance: str) -> None:
        self._forget_partitions()
        pool = self._pool = StepProcessPool(self.settings.processes or default_pool_size())
        # Idempotent, not transactional: the broker keeps each answer once and in order
        # however often librdkafka retries it, and no commit stands between an answer and
        # the processor that reads it.
        producer = Producer(producer_config(self.kafka))
        self._producer = producer
        config = consumer_config(self.kafka, self.group)
        # Static membership, as in the saga processor: a worker restarted under its
        # stable id takes its queues' partitions back at once, instead of leaving
        # them idle for its dead incarnation's session timeout (45 s).
        config["group.instance.id"] = instance
        consumer = Consumer(config)
        self._consumer = consumer
        consumer.subscribe(
            list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )  # fmt: skip
        tasks: set[asyncio.Task[None]] = set()
        interval = self.settings.commit_interval.total_seconds()
        last_commit = time.monotonic()
        try:
            while not self._stop.is_set():
                room = self.settings.max_buffered_commands - self._buffered
                self._flow_control(consumer, room)
                # With work in flight the loop must come back quickly; idle, it may block.
                timeout = 0 if tasks or self._unacked else 0.05
                messages = poll_batch(consumer, min(room, 1000), timeout) if room > 0 else []
                for message in messages:
                    self._accept(message, tasks)
                if tasks:
                    await self._until_a_command_finishes(_WAIT_IN_FLIGHT_S)
                else:
                    await asyncio.sleep(0)
                # Delivery reports mark their commands done; with nothing running, wait a
                # little for them rather than spin.
                producer.poll(_WAIT_IN_FLIGHT_S if self._unacked and not tasks else 0)
                if self._delivery_failed:
                    self._rewind(consumer)
                if self._dirty and time.monotonic() - last_commit >= interval:
                    self._commit(consumer)
                    last_commit = time.monotonic()
        except KafkaException as exc:
            if is_member_failure(exc):
                raise MemberFencedError(f"the step worker's Kafka client failed: {exc}") from exc
            raise
        finally:
            self._closing = True
            for task in tasks:
                task.cancel()
            pool.close()  # kills the processes of calls in flight: they run again
            # The answers already sent may still be acknowledged; leaving the group
            # commits the offsets of those that are (in the revocation).
            try:
                producer.flush(5)
            except KafkaException as exc:
                log.warning("flushing the answers failed (their commands run again): %s", exc)
            leave_and_close(consumer)
            try:
                producer.close()  # now, not at garbage collection, when the broker may be gone
            except KafkaException as exc:
                log.warning("closing the producer failed: %s", exc)
            self._consumer = self._producer = None

    def _accept(self, message: Message, tasks: set[asyncio.Task[None]]) -> None:
        error = message.error()
        if error is not None:
            if is_member_failure(error):
                raise MemberFencedError(f"consuming commands failed: {error}")
            if error.code() != KafkaError._PARTITION_EOF:
                log.error("consuming commands failed: %s", error)
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return
        key = (topic, partition)
        progress = self._progress.get(key)
        if progress is None:
            return  # revoked meanwhile
        progress.consumed(offset)
        self._dirty = True
        try:
            command = self._commands[topic].decode(message.value() or b"")
        except SerializationError as exc:
            # The record stays in the command topic; its step times out in the saga.
            log.error("skipping an unreadable command at %s[%d]@%d: %s", topic, partition,
                      offset, exc)  # fmt: skip
            progress.done(offset)
            return
        work = _Work(topic, partition, offset, self._epoch[key], command)
        self._buffered += 1
        chain = (command.workflow_id, command.step)
        self._supersede(self._queue.queued(chain), command)
        for ready in self._queue.submit(chain, work):
            self._start(ready, tasks)

    def _supersede(self, chain: tuple[_Work, ...], command: Command) -> None:
        """Mark the earlier attempts in ``chain`` of ``command``'s kind stale.

        The saga sends an attempt only after the one before it failed or timed out, so an
        earlier attempt still here is one redelivered after a crash: its answer would be
        ignored, and running it (from where that attempt began, not from the later
        attempt's heartbeat details) would hold the later attempt back. One not started is
        skipped; a running one ends at its next ``ctx.heartbeat``.
        """
        for earlier in chain:
            stale = earlier.command
            if stale.kind is command.kind and stale.attempt < command.attempt:
                earlier.superseded = True
                if earlier.heartbeats is not None:
                    earlier.heartbeats.supersede()
                log.info("attempt %d of %s/%s is superseded by attempt %d", stale.attempt,
                         stale.workflow_id, stale.step, command.attempt)  # fmt: skip

    def _start(self, work: _Work, tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.get_running_loop().create_task(self._execute(work, tasks))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _execute(self, work: _Work, tasks: set[asyncio.Task[None]]) -> None:
        command = work.command
        answer: Event | None = None
        try:
            now = _now_ms()
            if (
                not work.superseded
                and (command.deadline_ms is None or now < command.deadline_ms)
                and (command.start_deadline_ms is None or now < command.start_deadline_ms)
            ):
                # (Past either deadline the saga has already timed this attempt out.)
                self.metrics.command_dispatched(command.saga, command.step,
                                                (now - command.time_ms) / 1000)  # fmt: skip
                started = time.perf_counter()
                answer = await self._run_one(work)
                outcome = _OUTCOMES[command.kind, answer.error is None]
                elapsed = time.perf_counter() - started
                self.metrics.step_finished(command.saga, command.step, outcome, elapsed)
                self.metrics.step_ended(command.saga, command.step,
                                        (_now_ms() - command.time_ms) / 1000)  # fmt: skip
        finally:
            # Bookkeeping even if something above failed: the partition's offsets and the
            # step's queue must move on (an unanswered command times out in the saga).
            self._finish(work, answer)
            for ready in self._queue.done((command.workflow_id, command.step)):
                self._start(ready, tasks)

    async def _run_one(self, work: _Work) -> Event:
        command = work.command
        plan = self._plans.get((command.saga, command.version))
        if plan is None:
            # Another deployment may have this version: fail the attempt retryably.
            return answer_event(
                command,
                time_ms=_now_ms(),
                error=ErrorInfo(
                    "sagas.VersionNotDeployed",
                    f"this worker has no version {command.version} of saga {command.saga!r}",
                ),
            )
        loop = asyncio.get_running_loop()

        def send(event: Event) -> None:
            loop.call_soon_threadsafe(self._heartbeat, work, event)  # beats come from threads

        heartbeats = work.heartbeats = HeartbeatSender(command, _now_ms, send)
        flusher = loop.create_task(_flush_every(heartbeats))
        try:
            answer = await run_command(plan, command, _now_ms, heartbeats, self._pool)
            if answer.error is not None and answer.error.type == "StepTimedOut":
                action = plan.actions.get((command.step, command.kind))
                if action is not None and action.in_process:
                    log.warning("killed the process of %s of %s/%s attempt %d past its "
                                "deadline (a fresh one takes its place)", command.kind.value,
                                command.workflow_id, command.step, command.attempt)  # fmt: skip
                else:
                    # A thread cannot be killed: a plain function runs on, its value unused.
                    log.warning("abandoned %s of %s/%s attempt %d past its deadline",
                                command.kind.value, command.workflow_id, command.step,
                                command.attempt)  # fmt: skip
            return answer
        except SagaError as exc:
            error = ErrorInfo(type(exc).__name__, str(exc), exc.non_retryable)
            return answer_event(command, time_ms=_now_ms(), error=error)
        finally:
            flusher.cancel()

    def _heartbeat(self, work: _Work, event: Event) -> None:
        """Send a heartbeat (already coalesced by the caller) with the idempotent producer.

        It moves no offset: a heartbeat that is lost only lets the attempt's heartbeat
        deadline come nearer, which the next one (or the answer) makes good.
        """
        key = (work.topic, work.partition)
        if key not in self._progress or self._epoch.get(key) != work.epoch:
            return  # the partition was revoked: its new owner runs the command again
        producer = self._producer
        assert producer is not None
        topic = work.command.reply_topic
        try:
            producer.produce(topic, self._events(topic).encode(event), event.workflow_id.encode())
        except (BufferError, KafkaException) as exc:
            log.warning("a heartbeat of %s/%s was not sent: %s", event.workflow_id,
                        event.step, exc)  # fmt: skip

    async def _until_a_command_finishes(self, at_most_s: float) -> None:
        # One future that any finishing command resolves: waiting on every task instead
        # would add and remove a callback per task on each turn of the loop.
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup = loop.create_future()
        timer = loop.call_later(at_most_s, _resolve, wakeup)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None

    def _finish(self, work: _Work, answer: Event | None) -> None:
        if self._wakeup is not None:
            _resolve(self._wakeup)
        self._buffered -= 1
        if self._closing:
            return  # cancelled on the way out: not done, so it runs again
        key = (work.topic, work.partition)
        progress = self._progress.get(key)
        if progress is None or self._epoch.get(key) != work.epoch:
            return  # the partition was revoked; its new owner runs the command again
        if answer is None:
            progress.done(work.offset)
            self._dirty = True
            return
        self._send(work, answer)

    def _send(self, work: _Work, answer: Event) -> None:
        """Produce ``answer``; its command is done once the broker acknowledges it."""
        producer = self._producer
        assert producer is not None
        topic, key = work.command.reply_topic, (work.topic, work.partition)
        value = self._events(topic).encode(answer)
        epoch, offset = work.epoch, work.offset

        def delivered(error: KafkaError | None, message: Message) -> None:
            self._unacked -= 1
            if error is not None:
                # Not in the log: the command must run again, so nothing past it may be
                # committed; the rewind re-reads it from the committed offset.
                log.warning("an answer to %s[%d]@%d was not delivered: %s", work.topic,
                            work.partition, offset, error)  # fmt: skip
                self._delivery_failed = True
                return
            progress = self._progress.get(key)
            if progress is not None and self._epoch.get(key) == epoch:
                progress.done(offset)
                self._dirty = True

        wid = work.command.workflow_id.encode()
        self._unacked += 1
        try:
            try:
                producer.produce(topic, value, wid, on_delivery=delivered)
            except BufferError:
                producer.poll(0.05)
                producer.produce(topic, value, wid, on_delivery=delivered)
        except (BufferError, KafkaException) as exc:
            self._unacked -= 1
            raise KafkaUnavailableError(f"sending an answer to {topic} failed: {exc}") from exc

    def _commit(self, consumer: Consumer, *, asynchronous: bool = True) -> None:
        """Commit, per partition, the offset before which every command is done."""
        offsets = [
            TopicPartition(topic, partition, position)
            for (topic, partition), progress in self._progress.items()
            if (position := progress.committable()) is not None
        ]
        # With nothing in flight, the consumer's position also steps over transaction
        # markers after the last command, so a caught-up group shows no lag.
        idle = [tp for tp in offsets if self._progress[tp.topic, tp.partition].in_flight == 0]
        if idle:
            positions = {
                (tp.topic, tp.partition): tp.offset
                for tp in consumer.position([TopicPartition(t.topic, t.partition) for t in idle])
            }
            for tp in idle:
                tp.offset = max(tp.offset, positions.get((tp.topic, tp.partition), -1))
        self._dirty = False
        if not offsets:
            return
        try:
            # A commit that is lost only makes more commands run again after a crash.
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("committing command offsets failed (they run again): %s", exc)

    def _rewind(self, consumer: Consumer) -> None:
        """Re-read every assigned partition from its committed offset."""
        self._delivery_failed = False
        assigned = consumer.assignment()
        for tp in consumer.committed(assigned, timeout=30):
            key = (tp.topic, tp.partition)
            self._epoch[key] = self._epoch.get(key, 0) + 1
            self._progress[key] = PartitionProgress()
            consumer.seek(tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition, 0))

    def _flow_control(self, consumer: Consumer, room: int) -> None:
        if room <= 0 and not self._paused:
            consumer.pause(consumer.assignment())
            self._paused = True
        elif room > self.settings.max_buffered_commands // 2 and self._paused:
            consumer.resume(consumer.assignment())
            self._paused = False

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._epoch[key] = self._epoch.get(key, 0) + 1
            self._progress[key] = PartitionProgress()
        if self._paused:
            consumer.pause(partitions)
        self.ready.set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what is answered while the partitions are still ours: fewer re-runs.
        if self._producer is not None:
            self._producer.flush(5)
        if self._dirty and not self._delivery_failed:
            self._commit(consumer, asynchronous=False)
        self._drop(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._progress.pop(key, None)
            self._epoch[key] = self._epoch.get(key, 0) + 1


_WAIT_IN_FLIGHT_S = 0.002
"""With commands in flight, how long the loop waits for one to finish before polling again."""


async def _flush_every(heartbeats: HeartbeatSender) -> None:
    """Send the details a beat held back, once its interval has passed."""
    while True:
        await asyncio.sleep(max(heartbeats.interval_ms, 100) / 1000)
        heartbeats.flush()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_OUTCOMES = {
    (CommandKind.ACTION, True): "succeeded",
    (CommandKind.ACTION, False): "failed",
    (CommandKind.COMPENSATE, True): "compensated",
    (CommandKind.COMPENSATE, False): "compensation_failed",
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
