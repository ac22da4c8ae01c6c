"""The client services use to start, signal, cancel and query workflows."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import BaseModel

from sagas.client.query_client import NoEndpointsError, Page, QueryClient
from sagas.client.status_view import StatusView
from sagas.client.update_outcome import UpdateWaiter
from sagas.config import KafkaSettings
from sagas.definition import Saga
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.errors import (
    KafkaUnavailableError,
    RecordTooLargeError,
    SagaError,
    SerializationError,
    WaitTimeoutError,
    WorkflowEndedError,
    WorkflowNotFoundError,
)
from sagas.events import ErrorInfo, Event, EventType, Origin, StatusRecord, WorkflowStatus
from sagas.workflow_search import WorkflowSearch
from schemas.codecs import Codec
from schemas.deployment_codecs import event_codec, status_codec
from topics.admin import TopicAdminError, topic_max_message_bytes
from topics.client_configs import producer_config
from topics.naming import TopicNames
from topics.reachability import check_reachable
from topics.record_limits import RecordLimits, producer_max_bytes

_log = logging.getLogger(__name__)

SagaRef = Saga[Any] | SagaVersions | str
"""A saga given by its definition (inputs are validated) or by its name."""


@dataclass(frozen=True, slots=True)
class StartResult:
    """What :meth:`SagaClient.start_or_get` did: started the workflow, or found it."""

    workflow_id: str
    created: bool
    """True when this call sent the start; False when the workflow existed, so nothing was
    written and the input given was not used."""
    existing: StatusRecord | None = None
    """The status of the workflow found (when ``created`` is False)."""


class SagaClient:
    """Starts workflows and asks about them, over Kafka only.

    ``start`` returns once the broker has acknowledged the request (``wait=False`` returns
    at once; :meth:`flush` then waits for every pending request). Starting a workflow id
    that exists is a no-op: the existing workflow goes on, and ``result`` answers for it.

    The first request checks that a broker answers (:class:`KafkaUnreachableError` after
    ``kafka.connect_timeout`` seconds otherwise), so nothing is sent to a cluster that is
    not there.
    """

    def __init__(self, kafka: KafkaSettings | None = None) -> None:
        self.kafka = kafka or KafkaSettings()
        config = producer_config(self.kafka)
        # One delivery callback for the producer, served only for failures: a callback per
        # record costs more than the record's own produce call.
        self._producer = Producer(
            {**config, "on_delivery": self._on_delivery, "delivery.report.only.error": True}
        )
        self._limits = RecordLimits(
            producer_max_bytes=producer_max_bytes(config), lookup=self._topic_max_bytes
        )
        self._views: dict[str, StatusView] = {}
        # Per saga, compiled once: starting many workflows must not compile the definition
        # or build a codec for each (the saga object is kept, so its id stays its own).
        self._compiled: dict[int, tuple[SagaRef, str, SagaVersions | None]] = {}
        self._senders: dict[str, tuple[str, Codec[Event]]] = {}
        self._views_lock = threading.Lock()
        self._failures: list[KafkaError] = []
        self._reachable = False
        self._failed = False
        self._closed = False
        self._started: set[tuple[str, str]] = set()
        self._known_topics: set[str] = set()
        self.queries = QueryClient(self.kafka)
        """Describe, list and query through the processors' endpoints."""

    def start(
        self,
        saga: SagaRef,
        input: BaseModel | Mapping[str, Any],
        *,
        workflow_id: str | None = None,
        version: int = 0,
        wait: bool = True,
    ) -> str:
        """Start a workflow of ``saga`` and return its id (``version`` 0: the newest).

        The start is always sent; the processor ignores it when the id exists (recorded
        as ``start_ignored``, the workflow untouched). :meth:`start_or_get` says which.
        """
        name, versions = self._resolve(saga)
        payload = _input_json(name, versions, input, version)
        wid = workflow_id or uuid.uuid4().hex
        event = _event(wid, name, version, EventType.START_REQUESTED, payload=payload)
        self._send(name, event, "the start request (its input)")
        self._started.add((name, wid))
        if wait:
            self.flush()
        return wid

    def start_or_get(
        self,
        saga: SagaRef,
        input: BaseModel | Mapping[str, Any],
        *,
        workflow_id: str,
        version: int = 0,
    ) -> StartResult:
        """Start workflow ``workflow_id`` unless it exists; say which it was.

        The owning processor is asked first: a workflow it holds is answered with its
        status and nothing is written. Two callers racing on one new id both send a
        start; the processor keeps the first and records the other as ``start_ignored``.
        """
        name, _ = self._resolve(saga)
        existing = self._current(name, workflow_id)
        if existing is not None:
            return StartResult(workflow_id, False, existing)
        self.start(saga, input, workflow_id=workflow_id, version=version)
        return StartResult(workflow_id, True)

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

        Given the definition, a signal it does not declare, or a payload that fails the
        wait's model, raises :class:`SerializationError` and nothing is sent (the
        processor, which always has the definition, records such a signal as
        ``signal_rejected``). With ``check``, a workflow that does not exist or has ended
        raises :class:`WorkflowNotFoundError` or :class:`WorkflowEndedError` before
        anything is sent.
        """
        name, versions = self._resolve(saga)
        try:
            data = (
                payload.model_dump_json() if isinstance(payload, BaseModel) else json.dumps(payload)
            )
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"the payload of signal {signal!r} is not JSON-serializable: {exc}",
                saga=name,
                workflow_id=workflow_id,
            ) from exc
        before = self._current(name, workflow_id) if check else None
        if versions is not None:
            _check_signal(name, versions, signal, data, before)
        if check:
            self._check_running(name, workflow_id, f"signal {signal!r}", before)
        event = _event(workflow_id, name, 0, EventType.SIGNAL, payload=data, event_name=signal)
        self._send(name, event, f"the signal {signal!r} (its payload)")
        self.flush()

    def signal_with_start(
        self,
        saga: SagaRef,
        workflow_id: str,
        input: BaseModel | Mapping[str, Any],
        signal: str,
        payload: Any = None,
        *,
        version: int = 0,
    ) -> str:
        """Start the workflow unless it exists, and deliver ``signal`` to it, as one record.

        There is no moment at which the signal could find no workflow: the processor
        starts it (or finds it running) and takes the signal in the same transaction.
        """
        name, versions = self._resolve(saga)
        if versions is not None and signal not in versions.newest.signals:
            raise SagaError(
                f"saga {name!r} waits for no signal {signal!r} "
                f"(its signals: {sorted(versions.newest.signals)})",
                saga=name,
            )
        start = json.loads(_input_json(name, versions, input, version))
        data = json.loads(payload.model_dump_json()) if isinstance(payload, BaseModel) else payload
        both = json.dumps({"input": start, "signal": data})
        event = _event(
            workflow_id, name, version, EventType.SIGNAL_WITH_START, payload=both, event_name=signal
        )
        self._send(name, event, f"the start with signal {signal!r} (its input and payload)")
        self._started.add((name, workflow_id))
        self.flush()
        return workflow_id

    def update(
        self,
        saga: SagaRef,
        workflow_id: str,
        name: str,
        payload: Any,
        *,
        update_id: str | None = None,
        timeout: float = 30.0,
    ) -> Any:
        """Apply update ``name`` to a workflow and return its handler's result (as JSON data).

        Raises :class:`UpdateRejectedError` when the validator or the handler refused it
        or it came too late. The same ``update_id`` sent again is applied once and
        answered with the same outcome.
        """
        saga_name, _ = self._resolve(saga)
        data = payload.model_dump_json() if isinstance(payload, BaseModel) else json.dumps(payload)
        event = _event(
            workflow_id, saga_name, 0, EventType.UPDATE_REQUESTED, payload=data, event_name=name
        )
        if update_id is not None:
            event = replace(event, event_id=update_id)
        self._ensure_reachable()
        topic = TopicNames(saga_name, self.kafka.topic_prefix).events
        self._ensure_topic(saga_name, topic)
        # The answer follows the request on the workflow's partition: reading from that
        # partition's end as it is before sending cannot miss it.
        waiter = UpdateWaiter(self.kafka, topic, workflow_id)
        try:
            self._send(saga_name, event, f"the update {name!r} (its payload)")
            self.flush()
            return waiter.wait(event, timeout)
        finally:
            waiter.close()

    def cancel(self, saga: SagaRef, workflow_id: str, reason: str = "cancelled") -> None:
        """Ask a workflow to compensate what it completed and end ``CANCELLED``."""
        self._request(saga, workflow_id, EventType.CANCEL_REQUESTED, reason)

    def terminate(self, saga: SagaRef, workflow_id: str, reason: str) -> None:
        """Stop a workflow at once, with no compensation, recording ``reason``."""
        self._request(saga, workflow_id, EventType.TERMINATE_REQUESTED, reason)

    def status(self, saga: SagaRef, workflow_id: str, timeout: float = 30.0) -> StatusRecord:
        """The latest status of a workflow; :class:`WorkflowNotFoundError` if it has none.

        Asked of the processor that owns the workflow; only when no processor announces
        an endpoint is the status topic read (whole) instead. A workflow this client
        started may not have reached its processor yet: it is asked again, up to
        ``timeout`` seconds, before it is said not to exist.
        """
        name, _ = self._resolve(saga)
        deadline = time.monotonic() + timeout
        record = self._current(name, workflow_id, timeout)
        while (
            record is None and (name, workflow_id) in self._started and time.monotonic() < deadline
        ):
            time.sleep(0.05)
            record = self._current(name, workflow_id, max(0.0, deadline - time.monotonic()))
        if record is None:
            raise WorkflowNotFoundError("no such workflow", saga=name, workflow_id=workflow_id)
        return record

    def result(self, saga: SagaRef, workflow_id: str, timeout: float = 60.0) -> StatusRecord:
        """Wait until a workflow has ended and return its final status.

        A workflow this client did not start, and of which the status topic (read to its
        end) knows nothing, raises :class:`WorkflowNotFoundError` at once.
        """
        name, _ = self._resolve(saga)
        started_here = (name, workflow_id) in self._started
        deadline = time.monotonic() + timeout
        record: StatusRecord | None = None
        try:
            while True:
                described = self.queries.describe(name, workflow_id)
                if described is None and not started_here:
                    raise WorkflowNotFoundError(
                        "no such workflow", saga=name, workflow_id=workflow_id
                    )
                record = None if described is None else status_from_description(described)
                if (record is not None and record.status.is_final) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if record is not None and not record.status.is_final:
                record = None
        except NoEndpointsError:
            _log.info("no processor of saga %r answers queries: reading its status topic", name)
            view = self._view(name)
            if not started_here and view.get(workflow_id) is None:
                raise WorkflowNotFoundError(
                    "no such workflow", saga=name, workflow_id=workflow_id
                ) from None
            record = view.wait_for(
                workflow_id, lambda r: r.status.is_final, max(0.0, deadline - time.monotonic())
            )
        if record is None:
            raise WaitTimeoutError(
                f"the workflow did not end within {timeout:g} s", saga=name, workflow_id=workflow_id
            )
        return record

    def describe(self, saga: SagaRef, workflow_id: str) -> dict[str, Any]:
        """One workflow as its processor holds it: status, steps and attempts, timers and
        waits, parked flag, input, results and search attributes, and (``runs``, latest
        first) the runs it continued as new from, kept for the retention period."""
        name, _ = self._resolve(saga)
        described = self.queries.describe(name, workflow_id)
        if described is None:
            raise WorkflowNotFoundError("no such workflow", saga=name, workflow_id=workflow_id)
        return described

    def list(self, saga: SagaRef, search: WorkflowSearch | None = None) -> Page:
        """One page of the saga's workflows matching ``search``, newest start first; pass
        ``replace(search, cursor=page.next_cursor)`` for the next."""
        name, _ = self._resolve(saga)
        return self.queries.list(name, search or WorkflowSearch())

    def query(self, saga: SagaRef, workflow_id: str, name: str) -> Any:
        """The value of the saga's query ``name`` (``@saga.query``) for one workflow."""
        saga_name, _ = self._resolve(saga)
        return self.queries.query(saga_name, workflow_id, name)

    def statuses(self, saga: SagaRef) -> dict[str, StatusRecord]:
        """Every workflow's latest status seen so far (after catching up)."""
        name, _ = self._resolve(saga)
        view = self._view(name)
        view.catch_up()
        return view.snapshot()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every request sent so far is acknowledged by the brokers."""
        remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining or failures:
            self._failed = True
        if remaining:
            raise KafkaUnavailableError(
                f"{remaining} request(s) not acknowledged in {timeout}s: not written"
            )
        if failures:
            raise KafkaUnavailableError(
                f"{len(failures)} request(s) not written to Kafka, first: {failures[0].str()}"
            )

    def close(self) -> None:
        """Flush pending requests, then close the status views and the producer.

        After a failed request (already raised) or an unreachable cluster, what is still
        queued is dropped rather than flushed again, so closing never raises twice.
        """
        if self._closed:
            return
        self._closed = True
        self.queries.close()
        try:
            if self._failed or not self._reachable:
                self._producer.purge()
            else:
                self.flush()
        finally:
            with self._views_lock:
                for view in self._views.values():
                    view.close()
                self._views.clear()
            self._producer.close()

    def __enter__(self) -> SagaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, saga: SagaRef, workflow_id: str, type_: EventType, reason: str) -> None:
        name, _ = self._resolve(saga)
        error = ErrorInfo(type_.value, reason)
        self._check_running(name, workflow_id, type_.value, self._current(name, workflow_id))
        event = _event(workflow_id, name, 0, type_, payload=None, error=error)
        self._send(name, event, f"the {type_.value} request")
        self.flush()

    def _current(self, name: str, workflow_id: str, timeout: float = 30.0) -> StatusRecord | None:
        try:
            described = self.queries.describe(name, workflow_id)
        except NoEndpointsError:
            _log.info("no processor of saga %r answers queries: reading its status topic", name)
            return self._view(name).get(workflow_id, timeout=timeout)
        return None if described is None else status_from_description(described)

    def _check_running(
        self, name: str, workflow_id: str, what: str, before: StatusRecord | None
    ) -> None:
        """Refuse, before anything is written, a request to a workflow that has ended or
        that does not exist (unless this client started it: its start may be in flight)."""
        if before is not None:
            if before.status.is_final:
                raise WorkflowEndedError(
                    f"not sent: {what} to a workflow that already ended {before.status.value}",
                    saga=name,
                    workflow_id=workflow_id,
                )
            return
        if (name, workflow_id) not in self._started:
            raise WorkflowNotFoundError(
                f"not sent: {what} to a workflow that does not exist",
                saga=name,
                workflow_id=workflow_id,
            )

    def _ensure_reachable(self) -> None:
        if not self._reachable:
            try:
                check_reachable(self.kafka)
            except KafkaUnavailableError:
                self._failed = True
                raise
            self._reachable = True

    def _ensure_topic(self, saga: str, topic: str) -> None:
        # A record for a missing topic would wait out the delivery timeout and fail;
        # all topics are listed, since asking for one may create it on some brokers.
        if topic in self._known_topics:
            return
        try:
            metadata = self._producer.list_topics(timeout=self.kafka.connect_timeout)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"cannot read the cluster's topics: {exc}") from exc
        if topic not in metadata.topics:
            raise SagaError(
                f"event topic {topic} does not exist; run `sagas topics create` first", saga=saga
            )
        self._known_topics.add(topic)

    def _resolve(self, saga: SagaRef) -> tuple[str, SagaVersions | None]:
        if isinstance(saga, str):
            return saga, None
        known = self._compiled.get(id(saga))
        if known is None or known[0] is not saga:
            known = self._compiled[id(saga)] = (saga, *_resolve(saga))
        return known[1], known[2]

    def _send(self, saga: str, event: Event, what: str) -> None:
        self._ensure_reachable()
        sender = self._senders.get(saga)
        if sender is None:
            topic = TopicNames(saga, self.kafka.topic_prefix).events
            self._ensure_topic(saga, topic)
            sender = self._senders[saga] = (topic, event_codec(self.kafka, topic))
        topic, codec = sender
        value = codec.encode(event)
        key = event.workflow_id.encode()
        excess = self._limits.excess(topic, key, value)
        if excess is not None:
            raise RecordTooLargeError(
                what, topic=topic, size=excess[0], limit=excess[1], saga=saga,
                workflow_id=event.workflow_id,
            )  # fmt: skip
        for _ in range(100):
            try:
                self._producer.produce(topic, value, key)
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
            return topic_max_message_bytes(self.kafka.client_config(), [topic]).get(topic)
        except TopicAdminError:
            return None

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(error)

    def _view(self, saga: str) -> StatusView:
        self._ensure_reachable()
        with self._views_lock:
            view = self._views.get(saga)
            if view is None:
                topic = TopicNames(saga, self.kafka.topic_prefix).status
                view = self._views[saga] = StatusView(
                    self.kafka.client_config(),
                    topic,
                    status_codec(self.kafka, topic),
                    timeout=self.kafka.connect_timeout,
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
        if type(value) is model:
            return value.model_dump_json()  # validated when it was made
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


def _check_signal(
    name: str, versions: SagaVersions, signal: str, data: str, current: StatusRecord | None
) -> None:
    """Raise :class:`SerializationError` unless the workflow's version (any version, when
    its status is not known) declares ``signal`` and ``data`` fits its payload model."""
    plans = versions.plans
    if current is not None and current.version in plans:
        candidates = [plans[current.version]]
    else:
        candidates = list(plans.values())
    refusals = [plan.signal_refusal(signal, data) for plan in candidates]
    if any(refusal is None for refusal in refusals):
        return
    first = refusals[0]
    assert first is not None
    raise SerializationError(f"not sent: {first.message}", saga=name)


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


def status_from_description(described: Mapping[str, Any]) -> StatusRecord:
    """The status record of a workflow a processor described."""
    error = described.get("error")
    return StatusRecord(
        workflow_id=described["workflow_id"],
        saga=described["saga"],
        version=described["version"],
        status=WorkflowStatus(described["status"]),
        started_ms=described["started_ms"],
        updated_ms=described["updated_ms"],
        current_steps=tuple(described["current_steps"]),
        result=described.get("result"),
        error=ErrorInfo(error["type"], error["message"], error["non_retryable"]) if error else None,
        failed_step=described.get("failed_step"),
        parked=bool(described.get("parked")),
        failed_compensation=described.get("failed_compensation"),
        last_rejection=described.get("last_rejection"),
        run_id=described.get("run_id"),
        previous_run_id=described.get("previous_run_id"),
    )
