"""Reading a saga's dead-letter queue, putting records back (redrive) or giving them up
(discard).

What became of a record is written beside it: a marker record on the DLQ itself (no
value, headers :data:`~topics.dead_letter_headers.HEADER_MARK` and ``HEADER_MARKED``),
in the same transaction as the request on the event log, so a reader of the DLQ knows
each record's state and a second redrive is not sent. The saga processor keeps the
positions it handled too, so a request that slips through twice has no effect.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, replace

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from sagas.config import KafkaSettings
from sagas.errors import KafkaUnavailableError
from sagas.events import Event, EventType, Origin
from schemas.codecs import Codec
from schemas.deployment_codecs import event_codec
from topics.client_configs import producer_config
from topics.consumer_reads import read_partition
from topics.dead_letter_headers import (
    HEADER_EXCEPTION,
    HEADER_MARK,
    HEADER_MARKED,
    HEADER_REASON,
    HEADER_WORKFLOW,
    DeadLetterState,
    decode_headers,
)
from topics.naming import TopicNames


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of ``<saga>.dlq``: the original key and bytes, and why it is there."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    state: DeadLetterState = DeadLetterState.DEAD

    @property
    def workflow_id(self) -> str | None:
        return self.headers.get(HEADER_WORKFLOW)

    @property
    def reason(self) -> str:
        return self.headers.get(HEADER_REASON, "unknown")

    @property
    def exception(self) -> str:
        return self.headers.get(HEADER_EXCEPTION, "")


def read_dead_letters(kafka: KafkaSettings, saga: str, timeout: float = 60.0) -> list[DeadLetter]:
    """Every record in the saga's DLQ, partition by partition, oldest first."""
    topic = TopicNames(saga, kafka.topic_prefix).dlq
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{topic}.reader.{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        described = consumer.list_topics(topic, timeout=kafka.connect_timeout).topics.get(topic)
        if described is None or described.error is not None:
            raise KafkaUnavailableError(f"dead-letter topic {topic} does not exist", saga=saga)
        letters: list[DeadLetter] = []
        marks: dict[tuple[int, int], DeadLetterState] = {}
        for partition in sorted(described.partitions):
            for message in read_partition(consumer, topic, partition, timeout):
                offset, headers = message.offset(), message.headers()
                if offset is None:
                    continue
                decoded = decode_headers(headers if isinstance(headers, list) else None)
                mark = _mark(decoded)
                if mark is not None:
                    marks[mark[0]] = mark[1]
                    continue
                letters.append(
                    DeadLetter(partition, offset, message.key(), message.value(), decoded)
                )
        return [
            replace(letter, state=marks.get((letter.partition, letter.offset), letter.state))
            for letter in letters
        ]
    except KafkaException as exc:
        raise KafkaUnavailableError(f"reading {topic} failed: {exc}", saga=saga) from exc
    finally:
        consumer.close()


def _mark(headers: dict[str, str]) -> tuple[tuple[int, int], DeadLetterState] | None:
    """The position and state a marker record names, or ``None`` for a dead letter."""
    mark, marked = headers.get(HEADER_MARK), headers.get(HEADER_MARKED)
    if mark is None or marked is None:
        return None
    partition, _, offset = marked.partition(":")
    try:
        return (int(partition), int(offset)), DeadLetterState(mark)
    except ValueError:
        return None


def redrive(kafka: KafkaSettings, saga: str, letters: list[DeadLetter]) -> int:
    """Put ``letters`` (dead ones only: the others are skipped) back on the saga's event
    log and mark them redriven; returns how many were sent.

    A record of a workflow goes back inside a ``redrive_requested`` event, which unparks
    the workflow and applies the record and then what was held meanwhile, in order. A
    record with no workflow (unreadable, without a key) goes back as it was.
    """
    return _settle(kafka, saga, letters, DeadLetterState.REDRIVEN)


def discard(kafka: KafkaSettings, saga: str, letters: list[DeadLetter]) -> int:
    """Give ``letters`` (dead ones only) up for good and mark them discarded; returns how
    many. A record of a workflow is named in a ``discard_requested`` event: the processor
    records ``dead_letter_discarded``, unparks the workflow and applies what was held."""
    return _settle(kafka, saga, letters, DeadLetterState.DISCARDED)


def _settle(
    kafka: KafkaSettings, saga: str, letters: list[DeadLetter], state: DeadLetterState
) -> int:
    names = TopicNames(saga, kafka.topic_prefix)
    codec = event_codec(kafka, names.events)
    dead = [letter for letter in letters if letter.state is DeadLetterState.DEAD]
    if not dead:
        return 0
    producer = Producer(
        {**producer_config(kafka), "transactional.id": f"{names.dlq}.tool.{uuid.uuid4().hex}"}
    )
    try:
        producer.init_transactions(kafka.connect_timeout)
        producer.begin_transaction()
        for letter in dead:
            _request(producer, codec, names.events, saga, letter, state)
            marker: list[tuple[str, str | bytes | None]] = [
                (HEADER_MARK, state.value.encode()),
                (HEADER_MARKED, f"{letter.partition}:{letter.offset}".encode()),
            ]
            producer.produce(names.dlq, None, letter.key, headers=marker)
        producer.commit_transaction(30)
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        reason = error.str() if error is not None else str(exc)
        raise KafkaUnavailableError(
            f"{len(dead)} {state.value} record(s) not written to Kafka: {reason}", saga=saga
        ) from exc
    finally:
        producer.purge()
        producer.close()
    return len(dead)


def _request(
    producer: Producer,
    codec: Codec[Event],
    topic: str,
    saga: str,
    letter: DeadLetter,
    state: DeadLetterState,
) -> None:
    wid = letter.workflow_id
    position = {"dlq_partition": letter.partition, "dlq_offset": letter.offset}
    if state is DeadLetterState.REDRIVEN:
        if wid is None or letter.value is None:
            producer.produce(topic, letter.value, letter.key)
            return
        payload = json.dumps({"value": base64.b64encode(letter.value).decode(), **position})
        kind = EventType.REDRIVE_REQUESTED
    else:
        if wid is None:
            return  # no workflow waits for it: the marker is all there is to write
        payload = json.dumps(position)
        kind = EventType.DISCARD_REQUESTED
    event = Event(
        event_id=uuid.uuid4().hex, workflow_id=wid, saga=saga, version=0, type=kind,
        origin=Origin.CLIENT, time_ms=time.time_ns() // 1_000_000, payload=payload,
    )  # fmt: skip
    producer.produce(topic, codec.encode(event), wid.encode())
