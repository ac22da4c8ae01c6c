"""Reading a finished run back from Kafka and the effect ledger, and comparing it with the
outcomes :func:`~tests.integration.participants.flaky_order.predict` computed."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from sagas.client import SagaClient
from sagas.events import CommandKind, Event, EventType, StatusRecord
from schemas import EventCodec
from tests.integration.participants import ledger
from tests.integration.participants.flaky_order import SAGA_NAME, Expected

_TERMINAL = {EventType.COMPLETED, EventType.COMPENSATED, EventType.FAILED}
_SCHEDULED = {
    EventType.STEP_SCHEDULED: CommandKind.ACTION,
    EventType.COMPENSATION_SCHEDULED: CommandKind.COMPENSATE,
}


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def read_topic(config: dict[str, Any], topic: str, timeout: float = 60.0) -> list[Record]:
    """Every committed record of ``topic``, partition by partition in offset order."""
    consumer = Consumer(
        {**config, "group.id": "saga-run-checks", "isolation.level": "read_committed"}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        partitions = [TopicPartition(topic, p, 0) for p in sorted(metadata.partitions)]
        consumer.assign(partitions)
        ends = {}
        for tp in partitions:
            low, high = consumer.get_watermark_offsets(tp, timeout=30, cached=False)
            if high > low:
                ends[tp.partition] = high
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        # The position passes transaction markers and aborted records too, so reaching
        # the high watermark everywhere means every committed record has been read.
        while ends and any(
            tp.offset < ends[tp.partition]
            for tp in consumer.position([TopicPartition(topic, p) for p in ends])
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {topic} did not reach its end in {timeout}s")
            for message in consumer.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                records.append(
                    Record(
                        partition,
                        offset,
                        message.key(),
                        message.value(),
                        _headers(message.headers()),
                    )
                )
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _headers(
    headers: list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None,
) -> dict[str, bytes]:
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    result = {}
    for name, value in pairs:
        if value is not None:
            result[name] = value.encode() if isinstance(value, str) else value
    return result


def events_by_workflow(
    records: Iterable[Record], *, garbage: frozenset[bytes] = frozenset()
) -> dict[str, list[Event]]:
    """The decoded events of an event log, per workflow, in log order.

    Every record must decode, except values in ``garbage`` that a test wrote on purpose.
    """
    codec = EventCodec()
    result: dict[str, list[Event]] = defaultdict(list)
    for record in records:
        assert record.value is not None, f"a record without a value at offset {record.offset}"
        if record.value in garbage:
            continue
        event = codec.decode(record.value)
        result[event.workflow_id].append(event)
    return dict(result)


def wait_until_final(
    client: SagaClient, workflow_ids: Iterable[str], timeout: float
) -> dict[str, StatusRecord]:
    """The final statuses of ``workflow_ids``; fails naming the ones still open at the deadline."""
    pending = set(workflow_ids)
    deadline = time.monotonic() + timeout
    while True:
        statuses = client.statuses(SAGA_NAME)
        open_ = {w for w in pending if w not in statuses or not statuses[w].status.is_final}
        if not open_:
            return {w: statuses[w] for w in pending}
        if time.monotonic() > deadline:
            sample = sorted(open_)[:5]
            seen = {w: statuses[w].status.value if w in statuses else None for w in sample}
            raise AssertionError(
                f"{len(open_)} of {len(pending)} workflows did not end within {timeout}s, "
                f"e.g. {seen}"
            )
        time.sleep(0.2)


def check_run(
    expected: dict[str, Expected],
    statuses: dict[str, StatusRecord],
    events: dict[str, list[Event]],
    effects: ledger.LedgerView,
    *,
    each_attempt_once: bool,
) -> None:
    """Assert that the run matches the prediction in its statuses, log and effects.

    ``each_attempt_once`` also requires that no attempt ran twice, which holds when no
    process died (with crashes, actions are at least once and only the effects dedupe).
    """
    problems: list[str] = []
    for wid, want in expected.items():
        problems.extend(_check_status(want, statuses[wid]))
        problems.extend(_check_log(want, events.get(wid, [])))
        problems.extend(_check_effects(want, effects, each_attempt_once=each_attempt_once))
    unexpected = set(effects.applied) - {k for e in expected.values() for k in e.applied}
    if unexpected:
        problems.append(f"effects applied that no workflow should apply: {sorted(unexpected)[:5]}")
    assert not problems, f"{len(problems)} mismatches, first ones:\n" + "\n".join(problems[:15])


def effects_of(path: Path, workflow_ids: Iterable[str] | None = None) -> ledger.LedgerView:
    """The effect ledger at ``path``, of ``workflow_ids`` only when given."""
    attempts = ledger.read(path)
    if workflow_ids is not None:
        wanted = set(workflow_ids)
        attempts = [a for a in attempts if a.workflow_id in wanted]
    return ledger.view(attempts)


def _check_status(want: Expected, status: StatusRecord) -> list[str]:
    got = (status.status, status.failed_step, status.failed_compensation)
    wanted = (want.status, want.failed_step, want.failed_compensation)
    if got != wanted:
        return [f"{want.workflow_id}: status {got}, expected {wanted}"]
    return []


def _check_log(want: Expected, events: list[Event]) -> list[str]:
    wid, problems = want.workflow_id, []
    schedule = [(_SCHEDULED[e.type], e.step, e.attempt) for e in events if e.type in _SCHEDULED]
    if schedule != want.schedule:
        problems.append(f"{wid}: log scheduled {schedule}, expected {want.schedule}")
    undone: list[str] = []
    for event in events:
        if event.type is EventType.COMPENSATION_SUCCEEDED and event.step not in undone:
            assert event.step is not None
            undone.append(event.step)
    if undone != want.compensated:
        problems.append(f"{wid}: log compensated {undone}, expected {want.compensated}")
    ends = [e.type for e in events if e.type in _TERMINAL]
    if ends != [EventType(want.status.value.lower())]:
        problems.append(f"{wid}: log ends {ends}, expected one {want.status.value}")
    return problems


def _check_effects(
    want: Expected, effects: ledger.LedgerView, *, each_attempt_once: bool
) -> list[str]:
    wid, problems = want.workflow_id, []
    for key, attempts in want.attempts.items():
        ran = effects.attempts.get(key, set())
        if ran != set(range(1, attempts + 1)):
            problems.append(f"{key}: attempts {sorted(ran)} ran, expected 1..{attempts}")
        if each_attempt_once:
            twice = [n for n in ran if effects.runs[key, n] != 1]
            if twice:
                problems.append(f"{key}: attempts {twice} ran more than once")
    for key, effect in want.applied.items():
        seen = effects.effects_seen.get(key, set())
        if seen != {effect}:
            problems.append(f"{key}: effects {sorted(seen)}, expected only {effect!r}")
    order = effects.first_applied_order.get(wid, [])
    if order != list(want.applied):
        problems.append(f"{wid}: effects applied in order {order}, expected {list(want.applied)}")
    return problems
