"""The saga processor: consume ``S.events``, apply, and commit everything in one transaction.

Per polled batch: apply every record to its workflow's state (staged), fire the timers
that are due, then in ONE Kafka transaction produce the decisions, commands, status and
changelog records and commit the consumed offsets with the group metadata (exactly-once
v2). Only after the commit is the local store written, with the changelog offset beside
the data, so a crash at any point recovers from the changelog to a state that matches the
committed log. The transaction commits as soon as the polled batch is processed: a
command is invisible to read_committed step workers until then. Each partition's records
are applied by :class:`~processors.saga_batch.PartitionBatch`; the commit, step by step,
is :class:`~processors.checkpoint.Checkpoint`.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from processors.bounded_call import BoundedCaller, CallOverrunError
from processors.checkpoint import RECORD_ERRORS, Checkpoint
from processors.fresh_member import is_member_failure, run_restarting
from processors.instance import claim_instance, leave_and_close
from processors.metrics import Metrics
from processors.query_endpoint import QueryEndpoint, QuerySettings
from processors.saga_batch import DECISION_HEADER, Codecs, PartitionBatch, Routing, parked_ids
from processors.search_index import count_in_flight
from processors.settings import ProcessorSettings
from processors.store.base import Store
from processors.store.changelog import ChangelogWriter
from processors.store.errors import ChangelogRestoreError
from processors.store.keys import WORKFLOW_PREFIX, workflow_id_of
from processors.store.memory import MemoryStore
from processors.store.recovery import ChangelogRestorer
from processors.store.rocksdb import RocksDBStore
from processors.store.timers import count_timers, next_due_ms
from processors.visibility_staging import VisibilityStaging
from sagas.config import KafkaSettings
from sagas.engine.state import WorkflowState
from sagas.engine.versions import SagaVersions
from sagas.errors import KafkaUnavailableError, MemberFencedError
from schemas.deployment_codecs import command_codec, event_codec, status_codec
from topics.admin import TopicAdminError, admin_client, topic_max_message_bytes
from topics.client_configs import (
    consumer_config,
    start_transactional_producer,
)
from topics.consumer_reads import poll_batch, watermarks
from topics.naming import TopicNames
from topics.record_limits import RecordLimits, RecordRefusedError, producer_max_bytes

log = logging.getLogger(__name__)

_TXN_TIMEOUT_S = 30.0
"""How long a transaction's offsets and commit may take before the attempt fails."""
_OVERRUN_MARGIN_S = 5.0
"""How long past its own timeout a call is waited for before it is taken as hung."""
OFFSETS_CALL_LIMIT_S = _TXN_TIMEOUT_S + _OVERRUN_MARGIN_S
"""How long a member waits on adding offsets to a transaction before it starts over."""

_NEVER = 2**63 - 1


def codecs_for(kafka: KafkaSettings, routing: Routing) -> Codecs:
    """The processor's codecs: plain Avro, or the registry's wire format when configured."""
    return Codecs(
        event=event_codec(kafka, routing.events_topic),
        status=status_codec(kafka, routing.status_topic),
        command_for=functools.cache(lambda topic: command_codec(kafka, topic)),
        event_for=functools.cache(lambda topic: event_codec(kafka, topic)),
    )


def routing_for(versions: SagaVersions, prefix: str) -> Routing:
    """Where the processor of ``versions`` reads and writes, with topic ``prefix``."""
    names = TopicNames(versions.name, prefix)
    return Routing(
        saga=versions.name,
        events_topic=names.events,
        changelog_topic=names.state_changelog,
        status_topic=names.status,
        dlq_topic=names.dlq,
        command_topic=names.commands,
        events_topic_of=lambda saga: TopicNames(saga, prefix).events,
    )


class SagaProcessor:
    """Runs the workflows of one saga (all its deployed versions) from ``S.events``."""

    def __init__(
        self,
        versions: SagaVersions,
        kafka: KafkaSettings,
        settings: ProcessorSettings | None = None,
        *,
        metrics: Metrics | None = None,
        codecs: Codecs | None = None,
        query: QuerySettings | None = None,
    ) -> None:
        self.versions = versions
        self.settings = settings or ProcessorSettings()
        self.kafka = kafka
        self.names = TopicNames(versions.name, kafka.topic_prefix)
        self.routing = routing_for(versions, kafka.topic_prefix)
        self.metrics = metrics or Metrics()
        self.codecs = codecs or codecs_for(kafka, self.routing)
        self._stop = threading.Event()
        self._next_due: dict[int, int] = {}
        self._catch_up: dict[int, int] = {}
        """Per partition, the offset its records must be applied up to before its timers fire."""
        self._partition_count = 0
        self._timers_pending: dict[int, int] = {}
        self._offsets_caller: BoundedCaller | None = None
        self._in_flight: dict[int, int] = {}
        """Per partition, the workflows not ended: counted at assignment, then per batch."""
        # Per partition: states as last committed (so a busy workflow's state is not
        # parsed again for every event), and the ids of parked workflows.
        self._states: dict[int, dict[str, WorkflowState]] = {}
        self._parked: dict[int, set[str]] = {}
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._store: Store | None = None
        self._restorer: ChangelogRestorer | None = None
        self._limits: RecordLimits | None = None
        # Records the producer or broker refused in the current transaction, and the
        # workflows the next try of the batch dead-letters instead of applying.
        self._refusals: list[tuple[str, bytes | None, int, KafkaError]] = []
        self._refused: frozenset[str] = frozenset()
        self.ready = threading.Event()
        """Set once the first assignment is restored and records are being processed."""
        # Visibility: index entries and retention staged in each batch, and the HTTP
        # endpoint answering for the restored partitions.
        self._visibility = VisibilityStaging(versions, self.settings.retention)
        self._query_settings = query or QuerySettings()
        self.query_endpoint: QueryEndpoint | None = None

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current batch."""
        self._stop.set()

    def run(self) -> None:
        """Process until :meth:`stop` is called; raises on a fatal Kafka error."""
        group = self.names.processor_group
        claim = claim_instance(
            self.settings.state_dir, group, "processor", explicit=self.settings.instance_id
        )
        try:
            if self.settings.serve_queries:
                self.query_endpoint = QueryEndpoint(
                    self.versions, self.kafka, self._query_settings,
                    topic=self.names.query_endpoints, instance_id=claim.instance_id,
                    separate_process=self.settings.store != "memory", metrics=self.metrics,
                )  # fmt: skip
            run_restarting(
                f"saga processor {claim.instance_id}",
                lambda: self._run_as(group, claim.instance_id),
                self._stop,
            )
        finally:
            if self.query_endpoint is not None:
                self.query_endpoint.close()
            claim.release()

    def _run_as(self, group: str, instance: str) -> None:
        self._forget_partitions()
        self._store = self._open_store(group)
        self._restorer = ChangelogRestorer(self.kafka.client_config(), self.names.state_changelog)
        self._limits = self._read_limits()
        producer = start_transactional_producer(
            self.kafka, f"{group}.{instance}", self.settings.transaction_timeout
        )
        self._producer = producer
        self._offsets_caller = BoundedCaller("saga-processor-offsets")
        config = consumer_config(self.kafka, group)
        # Static membership: a process restarted under its stable id takes its
        # partitions back at once, instead of waiting out its dead incarnation's
        # session timeout (45 s) with every timer of those partitions stalled.
        config["group.instance.id"] = instance
        consumer = Consumer(config)
        self._consumer = consumer
        consumer.subscribe(
            [self.names.events],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        checkpoint = Checkpoint(
            producer,
            ChangelogWriter(producer, self.names.state_changelog),
            self._on_delivery,
            send_offsets=functools.partial(self._send_offsets, producer),
        )
        max_batch = self.settings.max_batch_records
        timeout = self.settings.poll_timeout.total_seconds()
        try:
            while not self._stop.is_set():
                messages = poll_batch(consumer, max_batch, timeout)
                now = _now_ms()
                due = [p for p, at in self._next_due.items() if at <= now]
                if due and self._catch_up:
                    due = self._caught_up(consumer, due)
                if not messages and not due:
                    producer.poll(0)
                    continue
                self._process(consumer, producer, checkpoint, messages, due, now)
        except KafkaException as exc:
            if is_member_failure(exc):
                raise MemberFencedError(f"the processor's Kafka client failed: {exc}") from exc
            raise
        finally:
            self._shutdown(consumer, producer)

    def _forget_partitions(self) -> None:
        """Start as a member that owns nothing: every partition is restored when assigned."""
        for held in (
            self._next_due,
            self._catch_up,
            self._timers_pending,
            self._in_flight,
            self._states,
        ):
            held.clear()
        self._parked.clear()
        self._refusals.clear()
        self._refused = frozenset()

    def _process(
        self,
        consumer: Consumer,
        producer: Producer,
        checkpoint: Checkpoint,
        messages: list[Message],
        due: list[int],
        now: int,
    ) -> None:
        assert self._store is not None
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if is_member_failure(error):
                    raise MemberFencedError(f"consuming {self.names.events} failed: {error}")
                raise KafkaUnavailableError(f"consuming {self.names.events} failed: {error}")
            by_partition[_partition(message)].append(message)
        batches: dict[int, PartitionBatch] = {}
        for partition in set(by_partition) | set(due):
            if partition not in self._next_due:
                continue  # revoked while the batch was polled
            batches[partition] = self._batch(partition, now)
        started = time.perf_counter()
        offsets = []
        for partition, batch in batches.items():
            records = by_partition.get(partition, ())
            for message in records:
                if _is_decision(message):
                    continue  # our own decision, already in the state: no need to decode
                batch.apply_record(_offset(message), message.key(), message.value())
            if records:
                offsets.append(
                    TopicPartition(self.names.events, partition, _offset(records[-1]) + 1)
                )
            if partition in due:
                fired = batch.fire_due_timers(self.settings.max_timers_per_batch)
                if fired >= self.settings.max_timers_per_batch:
                    self._next_due[partition] = now  # more are due: keep firing
                else:
                    self._next_due[partition] = _NEVER  # recomputed after the commit
            batch.finish()
        try:
            checkpoint.commit(
                batches,
                _past_markers(consumer, offsets) if offsets else [],
                consumer.consumer_group_metadata(),
            )
        except (KafkaException, RecordRefusedError) as exc:
            self._recover_from_failed_transaction(consumer, producer, checkpoint, batches, exc)
            return
        self._refused = frozenset()
        self._refusals.clear()
        for partition, batch in batches.items():
            self._remember(partition, batch)
            self._update_next_due(partition, batch)
            if partition in self._timers_pending:
                self._timers_pending[partition] += batch.timers_added
            if partition in self._in_flight:
                self._in_flight[partition] += batch.started - batch.ended
        self.metrics.timers_pending(self.versions.name, sum(self._timers_pending.values()))
        self.metrics.workflows_parked(self.versions.name, sum(map(len, self._parked.values())))
        self.metrics.workflows_in_flight(self.versions.name, sum(self._in_flight.values()))
        self.metrics.transaction_committed(
            "saga", time.perf_counter() - started, sum(b.inputs for b in batches.values())
        )

    def _send_offsets(
        self, producer: Producer, positions: list[TopicPartition], metadata: object
    ) -> None:
        """Add the batch's input offsets to the transaction (the checkpoint's step 4),
        giving up on a call that librdkafka leaves blocked (see
        :mod:`processors.bounded_call`)."""
        assert self._offsets_caller is not None
        try:
            self._offsets_caller.call(
                lambda: producer.send_offsets_to_transaction(positions, metadata, _TXN_TIMEOUT_S),
                OFFSETS_CALL_LIMIT_S,
            )
        except CallOverrunError as exc:
            # Nothing of the batch was committed: a fresh member re-reads its inputs.
            raise MemberFencedError(
                f"adding the consumed offsets to the transaction hung past "
                f"{OFFSETS_CALL_LIMIT_S:g} s (the group coordinator was lost)"
            ) from exc

    def _remember(self, partition: int, batch: PartitionBatch) -> None:
        cache = self._states.get(partition)
        if cache is None:
            return
        for wid, state in batch.changed_states().items():
            cache.pop(wid, None)  # re-inserted last: dicts keep insertion order
            cache[wid] = state
        if len(cache) > self.settings.state_cache_size:
            # The least recently changed first.
            for wid in list(itertools.islice(cache, len(cache) - self.settings.state_cache_size)):
                del cache[wid]
        for wid in batch.expired:
            cache.pop(wid, None)
        parked = self._parked[partition]
        parked.difference_update(batch.unparked)
        parked.update(batch.newly_parked)

    def _batch(self, partition: int, now: int) -> PartitionBatch:
        assert self._store is not None
        return PartitionBatch(
            routing=self.routing,
            codecs=self.codecs,
            versions=self.versions,
            store=self._store.partition(partition),
            partition=partition,
            partitions=self._partition_count,
            now_ms=now,
            metrics=self.metrics,
            cache=self._states.get(partition),
            parked=self._parked.get(partition),
            limits=self._limits,
            refused=self._refused,
            visibility=self._visibility,
        )

    def _update_next_due(self, partition: int, batch: PartitionBatch) -> None:
        assert self._store is not None
        current = self._next_due.get(partition)
        if current is None:
            return
        if current == _NEVER:
            current = next_due_ms(self._store.partition(partition)) or _NEVER
        if batch.earliest_new_timer is not None:
            current = min(current, batch.earliest_new_timer)
        self._next_due[partition] = current

    def _recover_from_failed_transaction(
        self,
        consumer: Consumer,
        producer: Producer,
        checkpoint: Checkpoint,
        batches: dict[int, PartitionBatch],
        exc: KafkaException | RecordRefusedError,
    ) -> None:
        # The delivery reports say which records failed: serve them before deciding.
        producer.poll(0)
        error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        in_abortable_state = isinstance(error, KafkaError) and error.code() == KafkaError._STATE
        if in_abortable_state:
            # produce() refuses every record once an earlier one has failed; that one's
            # delivery report names the culprit, so wait for the outstanding reports.
            producer.flush(5)
        refused = self._refused_workflows(exc)
        if refused:
            log.warning("retrying the batch without workflow(s) %s, whose records were "
                        "refused: %s", sorted(refused), exc)  # fmt: skip
            self._refused |= refused
        elif (
            not isinstance(error, KafkaError)
            or error.fatal()
            or not (error.txn_requires_abort() or in_abortable_state)
        ):
            # A fenced or timed-out producer cannot go on; a fresh one under the same
            # transactional id can, once the open transaction is aborted.
            raise MemberFencedError(f"transaction failed fatally: {exc}") from exc
        log.warning("aborting transaction after %s; rewinding to committed offsets", error)
        checkpoint.abort(batches)
        self._refusals.clear()
        for cache in self._states.values():
            cache.clear()  # a state of the aborted batch may have been cached: start afresh
        # Nothing was written locally; rewinding the consumer re-reads the aborted inputs
        # and re-derives the same decisions.
        assigned = consumer.assignment()
        reached = {tp.partition: tp.offset for tp in consumer.position(assigned)}
        for tp in consumer.committed(assigned, timeout=30):
            if tp.offset >= 0:
                consumer.seek(tp)
            else:
                consumer.seek(TopicPartition(tp.topic, tp.partition, 0))
            # The aborted batch applied inputs before it fired timers; so must its re-run.
            if reached[tp.partition] > max(tp.offset, 0):
                held = self._catch_up.get(tp.partition, 0)
                self._catch_up[tp.partition] = max(held, reached[tp.partition])
        for partition in self._next_due:
            self._next_due[partition] = _now_ms()

    def _refused_workflows(self, exc: KafkaException | RecordRefusedError) -> frozenset[str]:
        """The workflow to retry the batch without: the one whose record was refused.

        The broker refuses a whole produce request, so every record sent with the one too
        large is reported too: only the workflow of the largest refused record is taken
        out per try (a record the producer itself refused is known exactly). Empty when
        the failure is not tied to a record of a workflow not yet taken out, so a failure
        that persists stays fatal instead of looping.
        """
        if isinstance(exc, RecordRefusedError):
            candidates = [(exc.topic, exc.key)]
        else:
            refused = [r for r in self._refusals if r[3].code() in RECORD_ERRORS]
            refused.sort(key=lambda r: r[2], reverse=True)
            candidates = [(topic, key) for topic, key, _, _ in refused]
        for topic, key in candidates:
            wid = _workflow_of(topic, key, self.names.state_changelog)
            if wid is not None and wid not in self._refused:
                return frozenset({wid})
        return frozenset()

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._refusals.append((message.topic() or "", message.key(), len(message), error))

    def _read_limits(self) -> RecordLimits:
        """The record limits of the topics this processor writes, read from the broker."""
        admin = admin_client(self.kafka.client_config())
        topics = {
            self.names.events,
            self.names.status,
            self.names.state_changelog,
            self.names.dlq,
            *(
                self.routing.command_topic(q)
                for p in self.versions.plans.values()
                for q in p.queues
            ),
        }

        def lookup(topic: str) -> int | None:
            # A topic met later (another saga's log, for child workflows and parents).
            try:
                return topic_max_message_bytes(admin, [topic]).get(topic)
            except TopicAdminError as exc:
                log.warning("cannot read max.message.bytes of %s: %s", topic, exc)
                return None

        return RecordLimits(
            producer_max_bytes=producer_max_bytes(self.kafka.client_config()),
            topic_max_bytes=topic_max_message_bytes(admin, topics),
            lookup=lookup,
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self._store is not None
        assert self._restorer is not None
        topic = self.names.events
        # Asked of the producer, never of ``consumer``: this runs inside the consumer's
        # poll, and confluent-kafka's list_topics on the polling consumer clears that
        # poll's call state, so the next librdkafka line or callback of the same poll
        # (a failover logs many) aborts the process in CallState_get.
        assert self._producer is not None
        self._partition_count = len(
            self._producer.list_topics(topic, timeout=30).topics[topic].partitions
        )
        self._hold_timers_until_caught_up(consumer, partitions)
        for tp in partitions:
            store = self._store.partition(tp.partition)
            try:
                result = self._restorer.restore(store, tp.partition)
            except ChangelogRestoreError as exc:
                if not isinstance(exc.__cause__, KafkaException):
                    raise
                # Kafka did not answer in time (a failover that outlasted the wait): a
                # fresh member restores again, up to its limit of restarts.
                raise MemberFencedError(f"restoring partition {tp.partition}: {exc}") from exc
            if result.records:
                log.info("restored %d state records of partition %d", result.records, tp.partition)
            self._next_due[tp.partition] = next_due_ms(store) or _NEVER
            self._timers_pending[tp.partition] = count_timers(store)
            self._in_flight[tp.partition] = count_in_flight(store)
            self._states[tp.partition] = {}
            self._parked[tp.partition] = parked_ids(store)
        self.metrics.timers_pending(self.versions.name, sum(self._timers_pending.values()))
        self.metrics.workflows_parked(self.versions.name, sum(map(len, self._parked.values())))
        self.metrics.workflows_in_flight(self.versions.name, sum(self._in_flight.values()))
        if self.query_endpoint is not None:
            self.query_endpoint.assigned(
                {tp.partition: self._store.partition(tp.partition) for tp in partitions},
                self._partition_count,
            )
        self.ready.set()

    def _hold_timers_until_caught_up(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> None:
        """Hold each partition's timers until the records already in its log are applied.

        A deadline that passed while nobody processed the partition must not beat an answer
        that was in the log before it: an uninterrupted processor would have applied that
        answer first. So the timers wait until the consumer reaches the log's end as it was
        at assignment (the last stable offset, under read_committed); that end does not
        move, so a steady stream of new records does not hold them for ever. Deciding by
        what was read, not by record timestamps (producers' clocks), keeps the decision a
        plain timer_fired in the log, which a replay folds without a clock.
        """
        topic = self.names.events
        starts = [TopicPartition(topic, tp.partition) for tp in partitions]
        for tp in consumer.committed(starts, timeout=30):
            low, end = watermarks(consumer, TopicPartition(topic, tp.partition))
            # Only where there is something to read: a consumer that fetched nothing has
            # no position, and its timers would wait for ever.
            if max(tp.offset, low) < end:
                self._catch_up[tp.partition] = end

    def _caught_up(self, consumer: Consumer, due: list[int]) -> list[int]:
        """The partitions of ``due`` whose timers may fire: those caught up (see above)."""
        held = [TopicPartition(self.names.events, p) for p in due if p in self._catch_up]
        for tp in consumer.position(held) if held else ():
            if tp.offset >= self._catch_up[tp.partition]:
                del self._catch_up[tp.partition]
        return [p for p in due if p not in self._catch_up]

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self._store is not None
        if self.query_endpoint is not None:
            self.query_endpoint.revoked([tp.partition for tp in partitions])
        for tp in partitions:
            self._catch_up.pop(tp.partition, None)
            self._next_due.pop(tp.partition, None)
            self._timers_pending.pop(tp.partition, None)
            self._in_flight.pop(tp.partition, None)
            self._states.pop(tp.partition, None)
            self._parked.pop(tp.partition, None)
            self._store.close_partition(tp.partition)

    def _open_store(self, group: str) -> Store:
        if self.settings.store == "memory":
            return MemoryStore()
        return RocksDBStore(self.settings.state_dir, group, self.names.events)

    def _shutdown(self, consumer: Consumer, producer: Producer) -> None:
        leave_and_close(consumer)
        caller, self._offsets_caller = self._offsets_caller, None
        if caller is not None and caller.overran:
            # A call is still blocked inside the producer: closing it would block too. It is
            # left to its thread; the next member's producer fences it under the same id.
            log.warning("leaving a producer blocked in librdkafka behind, unclosed")
        else:
            try:
                producer.flush(10)
                producer.close()  # now, not at garbage collection, when the broker may be gone
            except KafkaException as exc:
                # A fenced producer refuses even to flush or close; what it held was never
                # committed, and the member starts over with a new one.
                log.warning("closing the producer failed: %s", exc)
        if caller is not None:
            caller.close()
        # A member that starts over must not share its transactional id with this
        # producer while this one still retries.
        self._consumer = self._producer = None
        if self._restorer is not None:
            self._restorer.close()
        if self.query_endpoint is not None:
            # Whatever the consumer's close revoked or not, nothing is answered from a
            # store that closes; a member that starts over serves what it restores.
            self.query_endpoint.revoked(self.query_endpoint.gates.served())
        if self._store is not None:
            self._store.close()


def _workflow_of(topic: str, key: bytes | None, changelog_topic: str) -> str | None:
    """The workflow a refused record was written for, as far as its key tells."""
    if key is None:
        return None
    try:
        if topic == changelog_topic:
            return workflow_id_of(key) if key.startswith(WORKFLOW_PREFIX) else None
        return key.decode()
    except UnicodeDecodeError:
        return None


def _past_markers(consumer: Consumer, offsets: list[TopicPartition]) -> list[TopicPartition]:
    """The offsets to commit: the consumer's positions, which also step over the transaction
    markers after the last record read, so a caught-up group shows no lag."""
    positions = consumer.position([TopicPartition(tp.topic, tp.partition) for tp in offsets])
    return [
        TopicPartition(tp.topic, tp.partition, max(tp.offset, pos.offset))
        for tp, pos in zip(offsets, positions, strict=True)
    ]


def _is_decision(message: Message) -> bool:
    headers = message.headers()
    return isinstance(headers, list) and bool(headers) and headers[0] == DECISION_HEADER


def _partition(message: Message) -> int:
    partition = message.partition()
    if partition is None:
        raise KafkaUnavailableError(f"a consumed record of {message.topic()} has no partition")
    return partition


def _offset(message: Message) -> int:
    offset = message.offset()
    if offset is None:
        raise KafkaUnavailableError(f"a consumed record of {message.topic()} has no offset")
    return offset


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
