"""Waiting for a workflow's answer to an update, read from its partition of the event log.

The answer is the processor's ``update_completed`` or ``update_rejected`` decision,
naming the request as its cause. It lands on the same partition as the request (both
are keyed by the workflow id) and after it, so reading from that partition's end as it
was before the request was sent finds it without a side channel: the log stays the
only record of what happened.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from sagas.config import KafkaSettings
from sagas.errors import (
    KafkaUnavailableError,
    SagaError,
    SerializationError,
    UpdateRejectedError,
    WaitTimeoutError,
)
from sagas.events import Event, EventType
from schemas.deployment_codecs import event_codec
from topics.client_configs import consumer_config
from topics.partitioning import partition_for


class UpdateWaiter:
    """Reads one workflow's partition of the event log from its end as it is when made,
    until the processor's answer to an update sent after that."""

    def __init__(self, kafka: KafkaSettings, topic: str, workflow_id: str) -> None:
        self._consumer = Consumer(consumer_config(kafka, f"sagas-update-{uuid.uuid4().hex}"))
        self._codec = event_codec(kafka, topic)
        self._topic = topic
        try:
            metadata = self._consumer.list_topics(topic, timeout=kafka.connect_timeout)
            count = len(metadata.topics[topic].partitions)
            partition = partition_for(workflow_id.encode(), count)
            _, end = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=kafka.connect_timeout
            )
            self._consumer.assign([TopicPartition(topic, partition, end)])
        except (KafkaException, KeyError) as exc:
            self._consumer.close()
            raise KafkaUnavailableError(f"cannot read the end of {topic}: {exc}") from exc

    def wait(self, request: Event, timeout: float) -> Any:
        """The result of update ``request``, once the workflow decided.

        Raises ``UpdateRejectedError`` when it refused the update and ``WaitTimeoutError``
        when no answer came within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                message = self._consumer.poll(min(0.5, max(0.0, deadline - time.monotonic())))
                if message is None or message.error() is not None:
                    continue
                value = message.value()
                if value is None:
                    continue
                try:
                    event = self._codec.decode(value)
                except SerializationError:
                    continue  # another writer's record; the processor dead-letters it
                if event.cause == request.event_id and event.workflow_id == request.workflow_id:
                    return _outcome(event, request)
        except KafkaException as exc:
            raise KafkaUnavailableError(
                f"cannot read {self._topic} for the update's answer: {exc}"
            ) from exc
        raise WaitTimeoutError(
            f"no answer to update {request.name!r} within {timeout:g} s "
            "(is a processor of this saga running?)",
            saga=request.saga,
            workflow_id=request.workflow_id,
            step=request.name,
        )

    def close(self) -> None:
        """Leave the partition."""
        self._consumer.close()


def _outcome(event: Event, request: Event) -> Any:
    if event.type is EventType.UPDATE_COMPLETED:
        return json.loads(event.payload or "{}").get("result")
    if event.type is EventType.UPDATE_REJECTED:
        error = event.error
        raise UpdateRejectedError(
            error.message if error is not None else "the update was rejected",
            reason=error.type if error is not None else "Rejected",
            saga=request.saga,
            workflow_id=request.workflow_id,
            step=request.name,
        )
    raise SagaError(f"unexpected answer {event.type.value} to an update", saga=request.saga)
