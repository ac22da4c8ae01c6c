"""Waiting for a workflow's answer to an update, read from its partition of the event log.

The answer is the processor's ``update_completed`` or ``update_rejected`` decision,
naming the request as its cause. It lands on the same partition as the request (both
are keyed by the workflow id) and after it, so reading from the request's own offset
finds it without a side channel: the log stays the only record of what happened.
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


def await_update(
    kafka: KafkaSettings,
    topic: str,
    partition: int,
    offset: int,
    request: Event,
    timeout: float,
) -> Any:
    """The result of update ``request`` (sent at ``offset``), once the workflow decided.

    Raises ``UpdateRejectedError`` when it refused the update and ``WaitTimeoutError``
    when no answer came within ``timeout`` seconds.
    """
    config = consumer_config(kafka, f"sagas-update-{uuid.uuid4().hex}")
    consumer = Consumer(config)
    codec = event_codec(kafka, topic)
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        while time.monotonic() < deadline:
            message = consumer.poll(min(0.5, max(0.0, deadline - time.monotonic())))
            if message is None or message.error() is not None:
                continue
            value = message.value()
            if value is None:
                continue
            try:
                event = codec.decode(value)
            except SerializationError:
                continue  # another writer's record; the processor dead-letters it
            if event.cause != request.event_id or event.workflow_id != request.workflow_id:
                continue
            return _outcome(event, request)
    except KafkaException as exc:
        raise KafkaUnavailableError(f"cannot read {topic} for the update's answer: {exc}") from exc
    finally:
        consumer.close()
    raise WaitTimeoutError(
        f"no answer to update {request.name!r} within {timeout:g} s "
        "(is a processor of this saga running?)",
        saga=request.saga,
        workflow_id=request.workflow_id,
        step=request.name,
    )


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
