"""Random mistakes thrown at a running worker: signal names and payloads, command lines
and raw records. The worker never stops, every rejection names its reason, and every
workflow left parked has a way out (a discard or a terminate frees it)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagas.client.dead_letters import read_dead_letters
from sagas.errors import SagaError
from sagas.events import EventType
from tests.integration.long_running import mistakes_saga
from tests.integration.long_running.conftest import Runtime
from tests.integration.long_running.mistakes_cli import (
    MODULE,
    has,
    history_until,
    readable_history,
    sagas,
)
from topics.dead_letter_headers import DeadLetterState
from topics.naming import TopicNames

NAME = mistakes_saga.saga.name
WORKFLOWS = ("f-1", "f-2", "f-3")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
signal_names = st.sampled_from(["approved", "rejected", "aproved", "", "APPROVED"]) | st.text(
    max_size=12
)
payloads = json_values | st.builds(lambda a: {"approver": a}, st.text(max_size=6))
cli_words = st.sampled_from(
    ["start", "signal", "cancel", "terminate", "status", "dlq", "list", "redrive", "discard",
     "--all", "--workflow", "--at", "--payload", "--input", "--id", "--reason", "--output",
     "json", NAME, f"{MODULE}:saga", "f-1", "f-2", "nobody", "0:0", "{}", "{bad", "approved"]
)  # fmt: skip
raw_values = st.binary(max_size=40)

mistakes = st.one_of(
    st.tuples(st.just("signal"), st.sampled_from(WORKFLOWS), signal_names, payloads),
    st.tuples(st.just("cli"), st.lists(cli_words | st.text(max_size=6), max_size=6)),
    st.tuples(st.just("raw"), st.sampled_from(WORKFLOWS), raw_values),
)


@pytest.mark.timeout(600)
def test_random_mistakes_never_stop_the_worker_or_strand_a_workflow(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(mistakes_saga.saga)
    kafka, client = runtime.kafka, runtime.client
    for wid in WORKFLOWS:
        client.start(mistakes_saga.saga, mistakes_saga.Claim(expense_id=wid, amount_cents=1),
                     workflow_id=wid)  # fmt: skip
    for wid in WORKFLOWS:
        history_until(kafka, NAME, wid, has(EventType.WAIT_STARTED))
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers,
                         "partitioner": "murmur2_random"})  # fmt: skip
    events_topic = TopicNames(NAME, kafka.topic_prefix).events
    [runner] = runtime.runners
    refusals: list[str] = []

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(mistake=mistakes)
    def throw(mistake: tuple[Any, ...]) -> None:
        kind = mistake[0]
        if kind == "signal":
            _, wid, name, payload = mistake
            try:
                client.signal(NAME, wid, name, payload)
            except SagaError as exc:
                refusals.append(str(exc))  # an ended workflow: refused, with a reason
        elif kind == "cli":
            answered = sagas(kafka, *mistake[1])
            assert answered.exit_code in (0, 1, 2, 3), answered.output
            if answered.exit_code in (1, 3):
                assert answered.output.strip().count("\n") == 0, answered.output
        else:
            _, wid, value = mistake
            producer.produce(events_topic, value, wid)
            assert producer.flush(30) == 0
        assert runner.alive

    throw()
    assert all(refusals), refusals
    time.sleep(2)
    assert runner.alive
    runner.raise_errors()

    for wid in WORKFLOWS:
        for event in readable_history(kafka, NAME, wid):
            if event.type is EventType.SIGNAL_REJECTED:
                assert event.error is not None
                assert event.error.type
                assert event.error.message
    for letter in read_dead_letters(kafka, NAME):
        assert letter.reason != "unknown"
        assert letter.exception
    # Every workflow still running can be freed: a discard of what is dead for it, then a
    # terminate, which is never held.
    if any(letter.state is DeadLetterState.DEAD for letter in read_dead_letters(kafka, NAME)):
        assert sagas(kafka, "dlq", "discard", NAME, "--all").exit_code == 0
    for wid in WORKFLOWS:
        status = client.status(NAME, wid)
        if not status.status.is_final:
            client.terminate(NAME, wid, "end of the fuzz run")
    deadline = time.monotonic() + 90
    for wid in WORKFLOWS:
        while not (status := client.status(NAME, wid)).status.is_final or status.parked:
            assert time.monotonic() < deadline, (wid, status)
            time.sleep(0.3)
    assert runner.alive
    assert json.loads(sagas(kafka, "dlq", "list", NAME, "--output", "json").stdout) is not None
