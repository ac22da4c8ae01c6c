"""The local Kafka launcher's pure parts: cluster ids and the jar resolution guard rails."""

from __future__ import annotations

import base64

import pytest

from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import random_cluster_id
from sagas.devkafka.install import require_tool
from sagas.errors import ConfigurationError


def test_cluster_ids_are_16_bytes_and_never_look_like_an_option() -> None:
    for _ in range(2000):  # about 30 would start with '-' if nothing drew them again
        cluster_id = random_cluster_id()
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_missing_tool_says_what_to_install() -> None:
    with pytest.raises(
        ConfigurationError, match="apt-get install -y openjdk-17-jre-headless maven"
    ):
        require_tool("surely-not-a-command-kafka-sagas-needs")


def test_only_one_or_three_nodes() -> None:
    with pytest.raises(ValueError, match="1 or 3 nodes"):
        LocalKafka(nodes=2)
