"""A small client of the Confluent Schema Registry REST API (the parts kafka-sagas uses)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import quote

from sagas.errors import SagaError, SerializationError

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistry(Protocol):
    """What the wire-format codecs need from a schema registry."""

    def register(self, subject: str, schema_text: str) -> int:
        """The id of ``schema_text`` under ``subject``, registering it if needed."""
        ...

    def schema_text(self, schema_id: int) -> str:
        """The schema (JSON text) registered under ``schema_id``."""
        ...


class SchemaRegistryError(SagaError):
    """The schema registry could not be reached or refused a request.

    Usually transient (the registry is down), so a record whose schema could
    not be fetched is retried, not dead-lettered.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        error_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.error_code = error_code


class UnknownSchemaError(SerializationError):
    """A record names a schema id that the registry does not know."""

    def __init__(self, schema_id: int, *, url: str) -> None:
        super().__init__(f"schema id {schema_id} is unknown to the schema registry at {url}")
        self.schema_id = schema_id
        self.url = url


class SchemaRegistryClient:
    """Registers schemas and fetches them by id, caching both answers for the process's life.

    Thread-safe; one instance per registry is meant to be shared by every codec.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise SchemaRegistryError(
                f"schema registry URL must start with http:// or https://, got {url!r}", url=url
            )
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = {"Accept": _CONTENT_TYPE, "Content-Type": _CONTENT_TYPE}
        if basic_auth is not None:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema_text: str) -> int:
        """The id of ``schema_text`` under ``subject``, registering it if the subject lacks it."""
        key = (subject, schema_text)
        with self._lock:
            known = self._ids.get(key)
        if known is not None:
            return known
        answer = self._request(
            "POST", f"/subjects/{quote(subject, safe='')}/versions", {"schema": schema_text}
        )
        schema_id = answer.get("id")
        if not isinstance(schema_id, int):
            raise SchemaRegistryError(
                f"schema registry answered a registration without an id: {answer!r}", url=self.url
            )
        with self._lock:
            self._ids[key] = schema_id
            self._schemas[schema_id] = schema_text
        return schema_id

    def schema_text(self, schema_id: int) -> str:
        """The schema (JSON text) the registry holds under ``schema_id``."""
        with self._lock:
            known = self._schemas.get(schema_id)
        if known is not None:
            return known
        try:
            answer = self._request("GET", f"/schemas/ids/{schema_id}", None)
        except SchemaRegistryError as exc:
            if exc.status == 404:
                raise UnknownSchemaError(schema_id, url=self.url) from exc
            raise
        text = answer.get("schema")
        if not isinstance(text, str):
            raise SchemaRegistryError(
                f"schema registry answered schema id {schema_id} without a schema", url=self.url
            )
        with self._lock:
            self._schemas[schema_id] = text
        return text

    def set_compatibility(self, subject: str, level: str) -> None:
        """Set the compatibility rule new versions of ``subject`` are checked against."""
        self._request("PUT", f"/config/{quote(subject, safe='')}", {"compatibility": level})

    def check_compatibility(self, subject: str, schema_text: str) -> bool | None:
        """Whether ``schema_text`` may be registered as the next version of ``subject``.

        None when the subject has no version yet (anything may be registered); Apicurio
        answers such a subject compatible instead.
        """
        path = f"/compatibility/subjects/{quote(subject, safe='')}/versions/latest"
        try:
            answer = self._request("POST", path, {"schema": schema_text})
        except SchemaRegistryError as exc:
            if exc.status == 404:
                return None
            raise
        return bool(answer.get("is_compatible"))

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        url = self.url + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            status, error_code, message = exc.code, None, exc.reason
            try:
                detail = json.loads(exc.read())
                error_code = detail.get("error_code")
                message = detail.get("message", message)
            except (ValueError, AttributeError):
                pass
            raise SchemaRegistryError(
                f"schema registry refused {method} {url}: HTTP {status} {message}",
                url=self.url,
                status=status,
                error_code=error_code,
            ) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SchemaRegistryError(
                f"schema registry at {self.url} did not answer {method} {path}: {exc}",
                url=self.url,
            ) from exc
        if not isinstance(answer, dict):
            raise SchemaRegistryError(
                f"schema registry answered {method} {path} with {answer!r}", url=self.url
            )
        return answer
