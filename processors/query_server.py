"""The saga processor's HTTP endpoint for visibility: Starlette routes served by uvicorn.

``GET /v1/workflows/{id}`` describes one workflow, ``POST /v1/workflows/search`` lists,
``POST /v1/workflows/{id}/queries/{name}`` evaluates a query. A partition being restored
or moved answers 503 with ``Retry-After``; with a token configured, a request without
``Authorization: Bearer <token>`` is refused with 401.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from processors.query_service import (
    NotServingError,
    QueryFunctionError,
    QueryService,
    QueryTimeoutError,
    UnknownQueryError,
)
from processors.store.errors import StoreError
from sagas.errors import ConfigurationError, SagaError, WorkflowNotFoundError
from sagas.workflow_search import WorkflowSearch

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1


def query_app(service: QueryService, token: str | None) -> Starlette:
    """The Starlette application answering for ``service``."""

    def guarded(
        handler: Callable[[Request, bytes], Response], *, waits: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``waits``: the handler may block (a query function, up to its time limit), so
        it runs on a thread; the others only read the store, which takes less than
        handing them to a thread would, so they answer on the event loop itself."""

        async def endpoint(request: Request) -> Response:
            if token is not None:
                given = request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    return _error(401, "a valid query token is required")
            try:
                body = await request.body()
                if waits:
                    response: Response = await run_in_threadpool(handler, request, body)
                    return response
                return handler(request, body)
            except NotServingError as exc:
                return _error(503, exc.message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            except WorkflowNotFoundError as exc:
                return _error(404, exc.message)
            except UnknownQueryError as exc:
                return _error(404, exc.message)
            except QueryTimeoutError as exc:
                return _error(504, exc.message)
            except QueryFunctionError as exc:
                return _error(422, exc.message)
            except StoreError as exc:
                # The store could not be read (a partition's files going away as it
                # moves, say): the server's failure, which a retry may not meet.
                return _error(503, exc.message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            except SagaError as exc:
                return _error(400, exc.message)

        return endpoint

    def describe(request: Request, body: bytes) -> Response:
        return JSONResponse(service.describe(request.path_params["workflow_id"]))

    def listing(request: Request, body: bytes) -> Response:
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise SagaError(f"the list request is not JSON: {exc}") from exc
        return JSONResponse(service.list(WorkflowSearch.from_json(data)))

    def query(request: Request, body: bytes) -> Response:
        value = service.query(request.path_params["workflow_id"], request.path_params["name"])
        return JSONResponse({"value": value})

    def health(request: Request, body: bytes) -> Response:
        return JSONResponse({"saga": service.versions.name, "partitions": service.gates.served()})

    return Starlette(
        routes=[
            Route("/v1/health", guarded(health), methods=["GET"]),
            Route("/v1/workflows/search", guarded(listing), methods=["POST"]),
            # Ids may hold "/" (a child's is "<parent>/<step>"), which arrives decoded.
            Route(
                "/v1/workflows/{workflow_id:path}/queries/{name}",
                guarded(query, waits=True),
                methods=["POST"],
            ),
            Route("/v1/workflows/{workflow_id:path}", guarded(describe), methods=["GET"]),
        ]
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def bind_socket(host: str, port: int, *, token: str | None) -> socket.socket:
    """A listening socket for the query endpoint; beyond 127.0.0.1 only with a token."""
    if not is_loopback(host) and not token:
        raise ConfigurationError(
            f"the query endpoint on {host} needs a token (--query-token or "
            "SAGAS_QUERY_TOKEN) when bound beyond 127.0.0.1"
        )
    bound = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        bound.bind((host, port))
    except OSError as exc:
        bound.close()
        raise ConfigurationError(f"cannot serve queries on {host}:{port}: {exc}") from exc
    # Requests that come before the server runs wait here rather than being refused.
    bound.listen(128)
    return bound


class QueryServer:
    """Runs uvicorn in a thread, on a socket bound beforehand (see :func:`bind_socket`)."""

    def __init__(self, app: Starlette, bound: socket.socket) -> None:
        self._socket = bound
        # No proxy stands before the endpoint, so no forwarded headers are read.
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
            proxy_headers=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="saga-query-server", daemon=True)

    def start(self) -> QueryServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except Exception:
            log.exception("the query endpoint stopped")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
