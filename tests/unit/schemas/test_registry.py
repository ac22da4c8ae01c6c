from __future__ import annotations

import base64

import pytest

from schemas.registry import SchemaRegistryClient, SchemaRegistryError
from tests.unit.schemas.conftest import FakeRegistry


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


def test_a_registry_answering_too_late_is_a_registry_error(fake_registry: FakeRegistry) -> None:
    fake_registry.delay_s = 1.5
    client = SchemaRegistryClient(fake_registry.url, timeout_s=0.3)
    with pytest.raises(SchemaRegistryError, match="did not answer POST") as caught:
        client.register("a-value", '"string"')
    assert caught.value.status is None


def test_a_5xx_answer_carries_its_status(fake_registry: FakeRegistry) -> None:
    fake_registry.fail_with = 500
    with pytest.raises(SchemaRegistryError, match="HTTP 500 failing") as caught:
        SchemaRegistryClient(fake_registry.url).schema_text(1)
    assert caught.value.status == 500
    assert caught.value.error_code == 50001
