"""The client services use to start, signal, cancel and query workflows."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import BaseModel

from sagas.client.status_view import StatusView
from sagas.config import KafkaSettings
from sagas.definition import Saga
from sagas.errors import (
    KafkaUnavailableError,
    RecordTooLargeError,
    SagaError,
    SerializationError,
    WorkflowEndedError,
    WorkflowNotFoundError,
)
from sagas.events import ErrorInfo, Event, EventType, Origin, StatusRecord
from sagas.versions import SagaVersions, compile_versions
from schemas.deployment_codecs import event_codec, status_codec
from topics.admin import TopicAdminError, topic_max_message_bytes
from topics.client_configs import producer_config, with_python_logging
from topics.naming import TopicNames
from topics.record_limits import RecordLimits, producer_max_bytes

SagaRef = Saga[Any] | SagaVersions | str
"""A saga given by its definition (inputs are validated) or by its name."""


class SagaClient:
    """Starts workflows and asks about them, over Kafka only.

    ``start`` returns once the broker has acknowledged the request (``wait=False`` returns
    at once; :meth:`flush` then waits for every pending request). Starting a workflow id
    that exists is a no-op: the existing workflow goes on, and ``result`` answers for it.
    """

    def __init__(self, kafka: KafkaSettings | None = None) -> None:
        self.kafka = kafka or KafkaSettings()
        config = producer_config(self.kafka)
        self._producer = Producer(config)
        self._limits = RecordLimits(
            producer_max_bytes=producer_max_bytes(config), lookup=self._topic_max_bytes
        )
        self._views: dict[str, StatusView] = {}
        self._views_lock = threading.Lock()
        self._failures: list[KafkaError] = []

    def start(
        self,
        saga: SagaRef,
        input: BaseModel | Mapping[str, Any],
        *,
        workflow_id: str | None = None,
        version: int = 0,
        wait: bool = True,
    ) -> str:
        """Start a workflow of ``saga`` and return its id (``version`` 0: the newest)."""
        name, versions = _resolve(saga)
        payload = _input_json(name, versions, input, version)
        wid = workflow_id or uuid.uuid4().hex
        event = _event(wid, name, version, EventType.START_REQUESTED, payload=payload)
        self._send(name, event, "the start request (its input)")
        if wait:
            self.flush()
        return wid

    def signal(
        self,
        saga: SagaRef,
        workflow_id: str,
        signal: str,
        payload: Any = None,
        *,
        check: bool = True,
    ) -> None:
        """Send ``signal`` with its JSON-able ``payload`` to a workflow.

        The signal is always recorded in the saga's log. With ``check``, a workflow that
        does not exist or has ended raises :class:`WorkflowNotFoundError` or
        :class:`WorkflowEndedError` after the signal was sent.
        """
        name, _ = _resolve(saga)
        data = payload.model_dump_json() if isinstance(payload, BaseModel) else json.dumps(payload)
        event = _event(workflow_id, name, 0, EventType.SIGNAL, payload=data, event_name=signal)
        before = self._view(name).get(workflow_id) if check else None
        self._send(name, event, f"the signal {signal!r} (its payload)")
        self.flush()
        if check:
            self._check_running(name, workflow_id, f"signal {signal!r}", before)

    def cancel(self, saga: SagaRef, workflow_id: str, reason: str = "cancelled") -> None:
        """Ask a workflow to compensate what it completed and end ``CANCELLED``."""
        self._request(saga, workflow_id, EventType.CANCEL_REQUESTED, reason)

    def terminate(self, saga: SagaRef, workflow_id: str, reason: str) -> None:
        """Stop a workflow at once, with no compensation, recording ``reason``."""
        self._request(saga, workflow_id, EventType.TERMINATE_REQUESTED, reason)

    def status(self, saga: SagaRef, workflow_id: str, timeout: float = 30.0) -> StatusRecord:
        """The latest status of a workflow; :class:`WorkflowNotFoundError` if it has none."""
        name, _ = _resolve(saga)
        record = self._view(name).get(workflow_id, timeout=timeout)
        if record is None:
            raise WorkflowNotFoundError("no such workflow", saga=name, workflow_id=workflow_id)
        return record

    def result(self, saga: SagaRef, workflow_id: str, timeout: float = 60.0) -> StatusRecord:
        """Wait until a workflow has ended and return its final status."""
        name, _ = _resolve(saga)
        record = self._view(name).wait_for(workflow_id, lambda r: r.status.is_final, timeout)
        if record is None:
            raise SagaError(
                f"the workflow did not end within {timeout}s", saga=name, workflow_id=workflow_id
            )
        return record

    def statuses(self, saga: SagaRef) -> dict[str, StatusRecord]:
        """Every workflow's latest status seen so far (after catching up)."""
        name, _ = _resolve(saga)
        view = self._view(name)
        view.catch_up()
        return view.snapshot()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every request sent so far is acknowledged by the brokers."""
        remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining:
            raise KafkaUnavailableError(f"{remaining} request(s) not acknowledged in {timeout}s")
        if failures:
            raise KafkaUnavailableError(f"{len(failures)} request(s) failed, first: {failures[0]}")

    def close(self) -> None:
        """Flush pending requests and stop the status views."""
        self.flush()
        with self._views_lock:
            for view in self._views.values():
                view.close()
            self._views.clear()

    def __enter__(self) -> SagaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, saga: SagaRef, workflow_id: str, type_: EventType, reason: str) -> None:
        name, _ = _resolve(saga)
        error = ErrorInfo(type_.value, reason)
        before = self._view(name).get(workflow_id)
        event = _event(workflow_id, name, 0, type_, payload=None, error=error)
        self._send(name, event, f"the {type_.value} request")
        self.flush()
        self._check_running(name, workflow_id, type_.value, before)

    def _check_running(
        self, name: str, workflow_id: str, what: str, before: StatusRecord | None
    ) -> None:
        # Only the status from before the request says the workflow had ended: read after
        # it, an end may be the request's own doing (a terminate, a deciding signal).
        if before is not None:
            if before.status.is_final:
                raise WorkflowEndedError(
                    f"{what} sent to a workflow that already ended {before.status.value}",
                    saga=name,
                    workflow_id=workflow_id,
                )
            return
        # No status yet may be a workflow whose start is still being processed.
        if self._view(name).get(workflow_id) is None:
            raise WorkflowNotFoundError(
                f"{what} sent to a workflow that does not exist", saga=name, workflow_id=workflow_id
            )

    def _send(self, saga: str, event: Event, what: str) -> None:
        topic = TopicNames(saga, self.kafka.topic_prefix).events
        value = event_codec(self.kafka, topic).encode(event)
        key = event.workflow_id.encode()
        excess = self._limits.excess(topic, key, value)
        if excess is not None:
            raise RecordTooLargeError(
                what, topic=topic, size=excess[0], limit=excess[1], saga=saga,
                workflow_id=event.workflow_id,
            )  # fmt: skip
        for _ in range(100):
            try:
                self._producer.produce(topic, value, key, on_delivery=self._on_delivery)
                return
            except BufferError:
                self._producer.poll(0.05)  # the local queue is full: let deliveries drain
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                reason = error.str() if error is not None else str(exc)
                raise KafkaUnavailableError(
                    f"Kafka refused {what} on {topic}: {reason}",
                    saga=saga,
                    workflow_id=event.workflow_id,
                ) from exc
        raise KafkaUnavailableError(f"the producer queue for {topic} stayed full")

    def _topic_max_bytes(self, topic: str) -> int | None:
        # Read once per topic; should the broker not say, the default limit applies.
        try:
            return topic_max_message_bytes(
                with_python_logging(self.kafka.client_config()), [topic]
            ).get(topic)
        except TopicAdminError:
            return None

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(error)

    def _view(self, saga: str) -> StatusView:
        with self._views_lock:
            view = self._views.get(saga)
            if view is None:
                topic = TopicNames(saga, self.kafka.topic_prefix).status
                view = self._views[saga] = StatusView(
                    with_python_logging(self.kafka.client_config()),
                    topic,
                    status_codec(self.kafka, topic),
                )
            return view


def _resolve(saga: SagaRef) -> tuple[str, SagaVersions | None]:
    if isinstance(saga, str):
        return saga, None
    versions = compile_versions(saga)
    return versions.name, versions


def _input_json(
    name: str,
    versions: SagaVersions | None,
    value: BaseModel | Mapping[str, Any],
    version: int,
) -> str:
    if versions is not None:
        plan = versions.newest if version == 0 else versions.plans.get(version)
        if plan is None:
            raise SagaError(f"saga {name!r} has no version {version}", saga=name)
        model = plan.types.input_model
        if isinstance(value, BaseModel) and not isinstance(value, model):
            raise SerializationError(
                f"input must be a {model.__name__}, not {type(value).__name__}", saga=name
            )
        data = value.model_dump() if isinstance(value, BaseModel) else dict(value)
        try:
            return model.model_validate(data).model_dump_json()
        except ValueError as exc:
            raise SerializationError(f"invalid input for saga {name!r}: {exc}", saga=name) from exc
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(dict(value))
    except TypeError as exc:
        raise SerializationError(f"input is not JSON-serializable: {exc}", saga=name) from exc


def _event(
    workflow_id: str,
    saga: str,
    version: int,
    type_: EventType,
    *,
    payload: str | None,
    event_name: str | None = None,
    error: ErrorInfo | None = None,
) -> Event:
    if not workflow_id:
        raise SagaError("a workflow id must not be empty", saga=saga)
    return Event(
        event_id=uuid.uuid4().hex,
        workflow_id=workflow_id,
        saga=saga,
        version=version,
        type=type_,
        origin=Origin.CLIENT,
        time_ms=time.time_ns() // 1_000_000,
        payload=payload,
        name=event_name,
        error=error,
    )
