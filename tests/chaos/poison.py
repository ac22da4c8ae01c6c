"""Poison records for the event topic: bytes hypothesis generates, and valid Avro events
with bytes flipped. Each is keyed ``poison-<n>``, a workflow nobody starts, so the DLQ
must hold every one and no real workflow is parked by them."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sagas.events import Event, EventType, Origin
from schemas import EventCodec


def fuzzed_bytes(count: int) -> list[bytes]:
    """``count`` byte strings drawn by hypothesis (derandomized, so a run is repeatable)."""
    drawn: list[bytes] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.binary(min_size=1, max_size=300))
    def draw(value: bytes) -> None:
        drawn.append(value)

    draw()
    return drawn[:count]


def mutated_avro(count: int, topic: str, saga: str, seed: int = 11) -> list[bytes]:
    """Valid encoded answers for workflows that do not exist, a few bytes of each flipped."""
    codec, rng, result = EventCodec(), random.Random(seed), []
    for n in range(count):
        valid = codec.encode(
            Event(
                event_id=f"poison-{n}",
                workflow_id=f"poison-m{n}",
                saga=saga,
                version=1,
                type=EventType.STEP_SUCCEEDED,
                origin=Origin.WORKER,
                time_ms=0,
                step="charge",
                attempt=1,
                payload=None,
            )
        )
        data = bytearray(valid)
        for _ in range(rng.randint(0, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        result.append(bytes(data))
    return result


def poison_records(count: int, topic: str, saga: str) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: half fuzzed bytes, half mutated Avro."""
    values = fuzzed_bytes(count - count // 2) + mutated_avro(count // 2, topic, saga)
    return [(f"poison-{n}".encode(), value) for n, value in enumerate(values)]
