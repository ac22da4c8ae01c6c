"""A minimal Confluent-API schema registry over stdlib http.server, for error-path tests.

What a working registry does is tested against a real one (tests/integration/schemas);
this one can also fail on purpose: answer 5xx, or answer too late.

It implements only what :class:`schemas.registry.SchemaRegistryClient` calls:
``POST /subjects/<subject>/versions`` and ``GET /schemas/ids/<id>``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest


@dataclass
class FakeRegistry:
    """What the fake registry holds and saw, and where it listens."""

    url: str
    schemas: dict[int, str] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    required_auth: str | None = None
    fail_with: int | None = None
    """An HTTP status every request is answered with, when set."""
    delay_s: float = 0.0
    """How long every answer waits, to let a client's timeout expire."""

    def register(self, subject: str, schema: str) -> int:
        """The id of ``schema``, the same for the same text under any subject, as Confluent's."""
        known = [schema_id for schema_id, text in self.schemas.items() if text == schema]
        schema_id = known[0] if known else len(self.schemas) + 1
        self.schemas[schema_id] = schema
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id


def _handler(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            time.sleep(registry.delay_s)
            if registry.fail_with is not None:
                self._answer(registry.fail_with, {"error_code": 50001, "message": "failing"})
                return False
            sent = self.headers.get("Authorization")
            if registry.required_auth is not None and sent != registry.required_auth:
                self._answer(401, {"error_code": 401, "message": "Unauthorized"})
                return False
            return True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            registry.requests.append(("POST", self.path, body))
            if not self._authorised():
                return
            parts = self.path.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
                schema = json.loads(body)["schema"]
                self._answer(200, {"id": registry.register(unquote(parts[1]), schema)})
            else:
                self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

        def do_GET(self) -> None:
            registry.requests.append(("GET", self.path, None))
            if not self._authorised():
                return
            parts = self.path.strip("/").split("/")
            if len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
                schema = registry.schemas.get(int(parts[2]))
                if schema is None:
                    self._answer(404, {"error_code": 40403, "message": "Schema not found"})
                else:
                    self._answer(200, {"schema": schema})
            else:
                self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

    return Handler


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    """A fresh registry listening on a free loopback port for one test."""
    registry = FakeRegistry(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    registry.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
