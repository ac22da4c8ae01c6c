"""Which Kafka errors make a processor start over as a fresh member, and the restart loop."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from processors.fresh_member import MAX_RESTARTS, is_member_failure, run_restarting
from sagas.errors import KafkaUnavailableError, MemberFencedError


@pytest.mark.parametrize(
    "code",
    [KafkaError._FATAL, KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
     KafkaError.INVALID_PRODUCER_EPOCH, KafkaError.FENCED_INSTANCE_ID],
)  # fmt: skip
def test_fencing_and_fatal_errors_are_member_failures(code: int) -> None:
    assert is_member_failure(KafkaError(code))
    assert is_member_failure(KafkaException(KafkaError(code)))


def test_a_fatal_flag_is_a_member_failure_whatever_the_code() -> None:
    assert is_member_failure(KafkaError(KafkaError._TIMED_OUT, fatal=True))


@pytest.mark.parametrize("code", [KafkaError._TRANSPORT, KafkaError._TIMED_OUT])
def test_passing_errors_are_not(code: int) -> None:
    assert not is_member_failure(KafkaError(code))
    assert not is_member_failure(ValueError("not kafka"))


def test_a_fenced_member_starts_over_until_it_runs() -> None:
    calls: list[int] = []

    def once() -> None:
        calls.append(len(calls))
        if len(calls) < 3:
            raise MemberFencedError("fenced")

    run_restarting("processor p", once, threading.Event(), first_pause_s=0.001)
    assert calls == [0, 1, 2]


def test_it_gives_up_after_many_restarts_in_a_row() -> None:
    calls: list[int] = []

    def once() -> None:
        calls.append(1)
        raise MemberFencedError("fenced again")

    with pytest.raises(MemberFencedError):
        run_restarting("processor p", once, threading.Event(), first_pause_s=0.0001)
    assert len(calls) == MAX_RESTARTS + 1


def test_other_errors_and_a_stop_end_the_loop() -> None:
    def unavailable() -> None:
        raise KafkaUnavailableError("no broker")

    with pytest.raises(KafkaUnavailableError):
        run_restarting("worker w", unavailable, threading.Event(), first_pause_s=0.001)
    stop = threading.Event()
    calls: list[int] = []

    def fenced_then_stopped() -> None:
        calls.append(1)
        stop.set()
        raise MemberFencedError("fenced while stopping")

    run_restarting("worker w", fenced_then_stopped, stop, first_pause_s=0.001)
    assert calls == [1]
