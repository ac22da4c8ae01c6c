"""``/healthz``, ``/readyz`` and (with a registry) ``/metrics`` of a worker, on one port."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], str | None]
"""A health check: ``None`` when fine, else why not (the body of the 503 answer)."""


def serve_health(
    port: int,
    healthy: Check,
    ready: Check,
    registry: CollectorRegistry | None = None,
    host: str = "",
) -> ThreadingHTTPServer:
    """Serve the endpoints on a daemon thread until ``shutdown()``; returns the server.

    ``/healthz`` is 200 while ``healthy()`` finds nothing wrong (the process works and
    reaches Kafka), ``/readyz`` while ``ready()`` does too (it also holds partitions).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics" and registry is not None:
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                problem = (healthy if path == "/healthz" else ready)()
                body = ("ok" if problem is None else problem) + "\n"
                self._answer(200 if problem is None else 503, body.encode(), "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes come every few seconds: they are not logged."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-server", daemon=True).start()
    return server
