from __future__ import annotations

import base64

import pytest

from schemas.registry import SchemaRegistryClient, SchemaRegistryError
from tests.unit.schemas.conftest import FakeRegistry


def test_register_caches_per_subject_and_schema(fake_registry: FakeRegistry) -> None:
    client = SchemaRegistryClient(fake_registry.url + "/")
    first = client.register("a-value", '"string"')
    assert client.register("a-value", '"string"') == first
    assert client.register("b-value", '"string"') == first
    posts = [path for method, path, _ in fake_registry.requests if method == "POST"]
    assert posts == ["/subjects/a-value/versions", "/subjects/b-value/versions"]
    assert client.schema_text(first) == '"string"'
    assert all(method == "POST" for method, _, _ in fake_registry.requests)


def test_subject_is_quoted_in_the_path(fake_registry: FakeRegistry) -> None:
    SchemaRegistryClient(fake_registry.url).register("odd/subject name-value", '"long"')
    assert fake_registry.requests[0][1] == "/subjects/odd%2Fsubject%20name-value/versions"
    assert "odd/subject name-value" in fake_registry.subjects


def test_basic_auth_is_sent(fake_registry: FakeRegistry) -> None:
    fake_registry.required_auth = "Basic " + base64.b64encode(b"svc:s3cret").decode()
    client = SchemaRegistryClient(fake_registry.url, basic_auth=("svc", "s3cret"))
    assert client.register("a-value", '"string"') == 1


def test_refusal_carries_status_and_error_code(fake_registry: FakeRegistry) -> None:
    fake_registry.required_auth = "Basic nobody"
    with pytest.raises(SchemaRegistryError, match="HTTP 401 Unauthorized") as caught:
        SchemaRegistryClient(fake_registry.url).register("a-value", '"string"')
    assert caught.value.status == 401
    assert caught.value.error_code == 401
    assert caught.value.url == fake_registry.url


def test_url_without_scheme_is_refused() -> None:
    with pytest.raises(SchemaRegistryError, match="must start with http"):
        SchemaRegistryClient("localhost:8081")
