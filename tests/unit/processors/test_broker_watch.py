"""The broker watch against a port nothing listens on: unreachable, and said once."""

from __future__ import annotations

import logging

import pytest

from processors.broker_watch import BrokerWatch
from sagas.config import KafkaSettings
from sagas.devkafka.cluster import free_port


@pytest.mark.timeout(60)
def test_a_lost_broker_is_logged_once_however_often_it_is_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    watch = BrokerWatch(KafkaSettings(bootstrap_servers=address, connect_timeout=0.5))
    assert watch.reachable
    with caplog.at_level(logging.INFO, logger="processors.broker_watch"):
        assert [watch.check() for _ in range(3)] == [False, False, False]
    assert not watch.reachable
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"lost the broker at {address}; retrying")
    ]
