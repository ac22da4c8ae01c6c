"""The query endpoint's HTTP answers, from a real uvicorn server on 127.0.0.1: a store
that cannot be read is a retryable 503, a partition not served is a 503, a missing
workflow a 404; an endpoint beyond 127.0.0.1 without a token is refused at start."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from processors.query_server import QueryServer, bind_socket, query_app
from processors.query_service import PartitionGates, QueryService
from processors.store.base import RangeReader
from processors.store.errors import StoreError
from processors.store.memory import MemoryPartitionStore
from sagas.engine.versions import compile_versions
from sagas.errors import ConfigurationError
from tests.integration.visibility import shop_saga


class _Unreadable:
    def concurrent_reader(self) -> RangeReader:
        raise StoreError("cannot read the store's files: gone", path="/nowhere", partition=0)


@pytest.fixture
def served() -> Iterator[tuple[str, PartitionGates]]:
    gates = PartitionGates()
    service = QueryService(compile_versions(shop_saga.saga), gates)
    bound = bind_socket("127.0.0.1", 0, token=None)
    server = QueryServer(query_app(service, None), bound).start()
    try:
        yield f"http://127.0.0.1:{bound.getsockname()[1]}", gates
    finally:
        server.stop()
        service.close()
        bound.close()


def _get(url: str) -> tuple[int, dict[str, str], dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, dict(refused.headers), json.loads(refused.read())


def test_a_store_that_cannot_be_read_is_a_retryable_answer(
    served: tuple[str, PartitionGates],
) -> None:
    url, gates = served
    gates.serve(0, _Unreadable(), 1)
    status, headers, body = _get(f"{url}/v1/workflows/order-1")
    assert status == 503
    assert headers["retry-after"] == "1"
    assert "cannot read the store's files" in str(body["error"])


def test_an_unserved_partition_is_retryable_and_a_missing_workflow_is_not_found(
    served: tuple[str, PartitionGates],
) -> None:
    url, gates = served
    status, headers, _ = _get(f"{url}/v1/workflows/order-1")
    assert (status, headers["retry-after"]) == (503, "1")
    gates.serve(0, MemoryPartitionStore(0), 1)
    status, _, body = _get(f"{url}/v1/workflows/order-1")
    assert status == 404
    assert "no workflow 'order-1'" in str(body["error"])


def test_beyond_loopback_a_token_is_required() -> None:
    with pytest.raises(ConfigurationError, match="needs a token"):
        bind_socket("0.0.0.0", 0, token=None)
