"""HTTP/1.1 connections to the processors' query endpoints, kept open between requests.

A new TCP connection per request cost the processor more than answering it (accepting,
a new protocol object, the teardown), on the thread that shares its interpreter with
the processing loop. Each thread of the client keeps one connection per endpoint, since
``http.client`` connections are not safe to share between threads.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Mapping


class KeptConnections:
    """One open connection per endpoint and thread, reopened when the server closed it."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[http.client.HTTPConnection] = []

    def request(
        self,
        url: str,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> tuple[int, bytes]:
        """The status and body of ``method`` ``url`` + ``path``; ``OSError`` when the
        endpoint cannot be reached or breaks off the answer."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OSError(f"not an http(s) endpoint: {url!r}")
        key = (parts.scheme, parts.hostname, parts.port)
        target = parts.path.rstrip("/") + path
        kept: dict[tuple[str, str, int | None], http.client.HTTPConnection]
        kept = self._local.__dict__.setdefault("kept", {})
        while True:
            connection = kept.get(key)
            reused = connection is not None
            if connection is None:
                connection = self._open(parts.scheme, parts.hostname, parts.port)
                kept[key] = connection
            try:
                connection.request(method, target, body=body, headers=dict(headers))
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError) as exc:
                self._drop(kept, key)
                if reused:
                    # The server closes a connection idle past its keep-alive: a request
                    # on it fails before it is read, so it goes again on a new one. Every
                    # request here only reads, so asking twice changes nothing.
                    continue
                raise OSError(f"{url}: {type(exc).__name__}: {exc}") from exc
            if response.will_close:
                self._drop(kept, key)
            return response.status, data

    def close(self) -> None:
        """Close every connection any thread opened."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def _open(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        connection = kind(host, port, timeout=self._timeout_s)
        with self._lock:
            self._opened.append(connection)
        return connection

    def _drop(
        self,
        kept: dict[tuple[str, str, int | None], http.client.HTTPConnection],
        key: tuple[str, str, int | None],
    ) -> None:
        connection = kept.pop(key, None)
        if connection is not None:
            connection.close()
            with self._lock:
                if connection in self._opened:
                    self._opened.remove(connection)
