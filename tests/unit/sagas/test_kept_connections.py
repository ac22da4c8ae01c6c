"""The query client's kept-open connections, against a real HTTP/1.1 server on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from sagas.client.kept_connections import KeptConnections


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    close_after = 0
    """When above 0, the server closes each connection after that many answers."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        self.answered = 0

    def do_GET(self) -> None:
        body = f'{{"path": "{self.path}"}}'.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.answered += 1
        if self.server.close_after and self.answered >= self.server.close_after:
            # Closed without saying so, as a server whose keep-alive ran out does.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    served = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_requests_share_one_connection(server: _Server) -> None:
    kept = KeptConnections(timeout_s=5)
    answers = [kept.request(_url(server), "GET", f"/v1/{n}", None, {}) for n in range(20)]
    kept.close()
    assert answers[7] == (200, b'{"path": "/v1/7"}')
    assert server.connections == 1


def test_a_connection_the_server_closed_is_opened_again(server: _Server) -> None:
    server.close_after = 3
    kept = KeptConnections(timeout_s=5)
    answers = [kept.request(_url(server), "GET", f"/v1/{n}", None, {}) for n in range(10)]
    kept.close()
    assert [status for status, _ in answers] == [200] * 10
    assert answers[-1][1] == b'{"path": "/v1/9"}'
    assert server.connections == 4


def test_each_thread_has_its_own_connection(server: _Server) -> None:
    kept = KeptConnections(timeout_s=5)
    answers: list[tuple[int, bytes]] = []

    def ask() -> None:
        answers.extend(kept.request(_url(server), "GET", "/v1/x", None, {}) for _ in range(5))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    kept.close()
    assert [status for status, _ in answers] == [200] * 15
    assert server.connections == 3


def test_an_endpoint_nobody_listens_on_is_an_os_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kept = KeptConnections(timeout_s=2)
    with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
        kept.request(f"http://127.0.0.1:{port}", "GET", "/v1/health", None, {})


def test_an_address_that_is_not_http_is_refused() -> None:
    with pytest.raises(OSError, match="not an http"):
        KeptConnections().request("ftp://127.0.0.1:21", "GET", "/", None, {})
