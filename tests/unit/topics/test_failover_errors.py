"""Which errors a partition answers while its leader fails over, and which are final."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from topics.consumer_reads import is_failover


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._DESTROY_BROKER,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    ],
)
def test_errors_of_a_moving_leader_are_waited_out(code: int) -> None:
    assert is_failover(KafkaError(code))


@pytest.mark.parametrize(
    "code",
    [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError._INVALID_ARG, KafkaError._FATAL],
)
def test_errors_that_waiting_does_not_mend_are_final(code: int) -> None:
    assert not is_failover(KafkaError(code))


def test_a_retriable_error_is_waited_out_whatever_its_code() -> None:
    assert is_failover(KafkaError(KafkaError.REQUEST_TIMED_OUT, retriable=True))


def test_what_is_not_a_kafka_error_is_not_a_failover() -> None:
    assert not is_failover(None)
    assert not is_failover("unknown partition")
