"""Asks the saga processors about workflows: describe, list and query, over their HTTP endpoints.

Where to ask comes from ``S.query-endpoints`` (one small record per processor, read
whole): a workflow id goes to the processor that owns murmur2(id) (as the producers
partition), a list goes to every processor and the pages are merged newest first. A
processor that is restoring or losing a partition answers 503; the client retries for a
while, then raises :class:`QueryUnavailableError`. Nothing here grows with the number of
workflows.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from sagas.client.kept_connections import KeptConnections
from sagas.config import KafkaSettings
from sagas.errors import QueryFailedError, QueryUnavailableError, QueryWorkflowNotFoundError
from sagas.workflow_search import WorkflowSearch, cursor_of
from topics.consumer_reads import poll_batch
from topics.naming import TopicNames
from topics.partitioning import partition_for

_REFRESH_SECONDS = 2.0


class NoEndpointsError(QueryUnavailableError):
    """No processor of the saga announces a query endpoint."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One processor's announcement: where it answers and for which partitions."""

    instance: str
    url: str
    partitions: frozenset[int]
    partition_count: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its workflows (newest start first) and the cursor of the next."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class QueryClient:
    """Routes visibility requests of any saga to its processors."""

    def __init__(self, kafka: KafkaSettings, *, retry_for: float = 10.0) -> None:
        self.kafka = kafka
        self.retry_for = retry_for
        """How long a request is retried while no processor can answer for it."""
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        self._endpoints: dict[str, tuple[float, list[Endpoint]]] = {}
        self._connections = KeptConnections(timeout_s=10.0)
        token = kafka.query_token.get_secret_value() if kafka.query_token is not None else None
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._connections.close()
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

    def endpoints(self, saga: str, *, refresh: bool = False) -> list[Endpoint]:
        """The processors of ``saga`` that announce an endpoint (read at most every 2 s)."""
        now = time.monotonic()
        cached = self._endpoints.get(saga)
        if cached is not None and not refresh and now - cached[0] < _REFRESH_SECONDS:
            return cached[1]
        found = self._read(TopicNames(saga, self.kafka.topic_prefix).query_endpoints)
        self._endpoints[saga] = (now, found)
        return found

    def describe(self, saga: str, workflow_id: str) -> dict[str, Any] | None:
        """Everything the owning processor knows of the workflow, or ``None`` if none."""
        found = self._routed(saga, workflow_id, "GET", f"/v1/workflows/{_quote(workflow_id)}")
        return None if found is None else dict(found)

    def query(self, saga: str, workflow_id: str, name: str) -> Any:
        """The value of a query declared by the saga, for one workflow.

        Raises :class:`QueryFailedError` when the query raised, ran too long, is unknown,
        or the workflow is.
        """
        path = f"/v1/workflows/{_quote(workflow_id)}/queries/{_quote(name)}"
        answer = self._routed(saga, workflow_id, "POST", path, b"{}")
        if answer is None:
            raise QueryWorkflowNotFoundError(
                "no such workflow", status=404, saga=saga, workflow_id=workflow_id
            )
        return answer["value"]

    def list(self, saga: str, search: WorkflowSearch) -> Page:
        """One page of the saga's workflows matching ``search``, from every processor."""
        body = json.dumps(search.to_json()).encode()
        deadline = time.monotonic() + self.retry_for
        refresh = False
        while True:
            endpoints = self.endpoints(saga, refresh=refresh)
            if not endpoints:
                raise NoEndpointsError(_no_endpoints(saga))
            count = max(e.partition_count for e in endpoints)
            answered: set[int] = set()
            items: list[dict[str, Any]] = []
            for endpoint in endpoints:
                try:
                    status, answer = self._call(endpoint.url, "POST", "/v1/workflows/search", body)
                except OSError:
                    continue  # a stale announcement of a stopped processor
                if status == 503:
                    continue
                if status != 200:
                    raise QueryFailedError(_message(answer), status=status, saga=saga)
                fresh = set(answer["partitions"]) - answered
                answered |= fresh
                items.extend(answer["items"])
            if answered >= set(range(count)):
                break
            if time.monotonic() >= deadline:
                missing = sorted(set(range(count)) - answered)
                raise QueryUnavailableError(
                    f"no processor answered for partitions {missing} of saga {saga!r} within "
                    f"{self.retry_for:g} s (a rebalance or restore in progress?)",
                    saga=saga,
                )
            refresh = True
            time.sleep(0.2)
        unique = {item["workflow_id"]: item for item in items}
        merged = sorted(unique.values(), key=lambda i: (-i["started_ms"], i["workflow_id"]))
        page = merged[: search.limit]
        more = len(merged) > search.limit or len(page) == search.limit
        last = page[-1] if page else None
        cursor = cursor_of(last["started_ms"], last["workflow_id"]) if more and last else None
        return Page(page, cursor)

    def _routed(
        self, saga: str, workflow_id: str, method: str, path: str, body: bytes | None = None
    ) -> Mapping[str, Any] | None:
        deadline = time.monotonic() + self.retry_for
        refresh = False
        while True:
            endpoints = self.endpoints(saga, refresh=refresh)
            if not endpoints:
                raise NoEndpointsError(_no_endpoints(saga))
            owner = _owner(endpoints, workflow_id)
            reason = "no processor announces its partition"
            if owner is not None:
                try:
                    status, answer = self._call(owner.url, method, path, body)
                except OSError as exc:
                    reason = f"{owner.url} is unreachable: {exc}"
                else:
                    if status == 200:
                        return answer
                    if status == 404 and "no workflow" in _message(answer):
                        return None
                    if status != 503:
                        raise QueryFailedError(
                            _message(answer), status=status, saga=saga, workflow_id=workflow_id
                        )
                    reason = _message(answer)
            if time.monotonic() >= deadline:
                raise QueryUnavailableError(
                    f"no processor answered within {self.retry_for:g} s: {reason}",
                    saga=saga,
                    workflow_id=workflow_id,
                )
            refresh = True
            time.sleep(0.1)

    def _call(
        self, url: str, method: str, path: str, body: bytes | None
    ) -> tuple[int, Mapping[str, Any]]:
        status, data = self._connections.request(url, method, path, body, self._headers)
        try:
            return status, json.loads(data)
        except ValueError as exc:
            if status != 200:
                return status, {"error": f"HTTP {status}"}
            raise OSError(f"not a JSON answer: {exc}") from exc

    def _read(self, topic: str) -> builtins.list[Endpoint]:
        with self._lock:
            if self._consumer is None:
                self._consumer = Consumer(
                    {
                        **self.kafka.client_config(),
                        "group.id": f"{topic}.reader",
                        "enable.auto.commit": False,
                    }
                )
            consumer = self._consumer
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, 0), timeout=10, cached=False
                )
            except KafkaException:
                return []  # no such topic (yet): nobody announces
            if high <= low:
                return []
            consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            latest: dict[bytes, bytes | None] = {}
            deadline = time.monotonic() + 10
            reached = low
            while reached < high and time.monotonic() < deadline:
                # Not consume(500, 0.5): it holds records back until 500 are there or
                # the half second has passed, and the topic holds a few, so every
                # refresh (one each 2 s) stalled the request that made it by 0.5 s.
                for message in poll_batch(consumer, 500, 0.5):
                    if message.error() is not None:
                        continue
                    key = message.key()
                    if key is not None:
                        latest[key] = message.value()
                    reached = (message.offset() or 0) + 1
            consumer.unassign()
        endpoints = []
        for value in latest.values():
            if value is None:
                continue
            try:
                data = json.loads(value)
                endpoints.append(
                    Endpoint(
                        data["instance"],
                        data["url"],
                        frozenset(data["partitions"]),
                        int(data["partition_count"]),
                        int(data["time_ms"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue  # not an announcement this client can read
        return endpoints


def _owner(endpoints: list[Endpoint], workflow_id: str) -> Endpoint | None:
    count = max(e.partition_count for e in endpoints)
    if count <= 0:
        return None
    partition = partition_for(workflow_id.encode(), count)
    owners = [e for e in endpoints if partition in e.partitions]
    # During a rebalance two may claim it for a moment: the latest announcement is right.
    return max(owners, key=lambda e: e.time_ms) if owners else None


def _message(answer: Mapping[str, Any]) -> str:
    return str(answer.get("error", answer))


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _no_endpoints(saga: str) -> str:
    # A processor announces itself once it has started: none means none runs (or none
    # has reached Kafka since the endpoints topic was last read).
    return (
        f"no processor of saga {saga!r} announces a query endpoint: "
        "start its processor (sagas worker MODULE:SAGA)"
    )
