"""Measure microseconds per encode and decode of each record codec, plain and wire format.

The codecs run on every record a processor reads or writes, so their cost
bounds throughput on two cores. Prints one row per codec and mode, with the
bare fastavro call on a ready-made dict as the floor to compare with:

    .venv/bin/python bench/codec_micro.py --iterations 50000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from sagas.events import (
    Command,
    CommandKind,
    ErrorInfo,
    Event,
    EventType,
    Origin,
    StatusRecord,
    WorkflowStatus,
)
from schemas import AvroCodec, CommandCodec, EventCodec, StatusCodec, topic_codec

EVENT = Event(
    event_id="0b9c3f5e-8d1a-4c1e-9a57-2f7f2f6a1c01",
    workflow_id="order-000123456",
    saga="order",
    version=3,
    type=EventType.STEP_SUCCEEDED,
    origin=Origin.WORKER,
    time_ms=1_763_750_000_000,
    step="charge_card",
    attempt=1,
    payload='{"charge_id": "ch_3Px9", "amount_cents": 12999, "currency": "EUR"}',
    cause="5d1e7a0c-3b7b-4f0e-8a43-1b8e0f7c2d11",
)
FAILED_EVENT = Event(
    event_id="0b9c3f5e-8d1a-4c1e-9a57-2f7f2f6a1c02",
    workflow_id="order-000123456",
    saga="order",
    version=3,
    type=EventType.STEP_FAILED,
    origin=Origin.WORKER,
    time_ms=1_763_750_000_100,
    step="charge_card",
    attempt=2,
    error=ErrorInfo("CardDeclined", "insufficient funds", non_retryable=True),
)
COMMAND = Command(
    command_id="7f0e2c9a-1d44-4c55-b3a2-9e0d6c5b4a31",
    workflow_id="order-000123456",
    saga="order",
    version=3,
    step="charge_card",
    attempt=1,
    kind=CommandKind.ACTION,
    idempotency_key="order-000123456/charge_card/action",
    reply_topic="order.events",
    time_ms=1_763_750_000_000,
    deadline_ms=1_763_750_030_000,
    input='{"order_id": "123456", "items": [{"sku": "A-1", "qty": 2}], "total_cents": 12999}',
    results='{"reserve_stock": {"reservation": "r-88"}}',
)
STATUS = StatusRecord(
    workflow_id="order-000123456",
    saga="order",
    version=3,
    status=WorkflowStatus.RUNNING,
    started_ms=1_763_749_999_000,
    updated_ms=1_763_750_000_000,
    current_steps=("charge_card",),
)


class InMemoryRegistry:
    """A registry held in a dict, so the wire-format rows measure framing, not HTTP."""

    def __init__(self) -> None:
        self._schemas: dict[int, str] = {}

    def register(self, subject: str, schema_text: str) -> int:
        """The id of ``schema_text``, assigned on first sight."""
        for schema_id, text in self._schemas.items():
            if text == schema_text:
                return schema_id
        self._schemas[len(self._schemas) + 1] = schema_text
        return len(self._schemas)

    def schema_text(self, schema_id: int) -> str:
        """The schema registered under ``schema_id``."""
        return self._schemas[schema_id]


def _per_call_us(call: Callable[[], object], iterations: int, repeats: int) -> float:
    """The median over ``repeats`` runs of the mean time of one call, in microseconds."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            call()
        runs.append((time.perf_counter() - start) / iterations * 1e6)
    return statistics.median(runs)


def _rows(iterations: int, repeats: int) -> list[tuple[str, float, float, int]]:
    registry = InMemoryRegistry()
    cases: list[tuple[str, AvroCodec[Any], object]] = [
        ("event (succeeded)", EventCodec(), EVENT),
        ("event (failed)", EventCodec(), FAILED_EVENT),
        ("command", CommandCodec(), COMMAND),
        ("status", StatusCodec(), STATUS),
    ]
    rows = []
    for label, codec, record in cases:
        fields = codec.to_dict(record)
        body = codec.encode(record)
        parsed = codec.schema.parsed

        def bare_encode(fields: dict[str, Any] = fields, parsed: Any = parsed) -> bytes:
            buffer = BytesIO()
            schemaless_writer(buffer, parsed, fields)
            return buffer.getvalue()

        def bare_decode(body: bytes = body, parsed: Any = parsed) -> object:
            return schemaless_reader(BytesIO(body), parsed, None)

        rows.append(
            (
                f"{label}: bare fastavro",
                _per_call_us(bare_encode, iterations, repeats),
                _per_call_us(bare_decode, iterations, repeats),
                len(body),
            )
        )
        for mode, wrapped in (
            ("plain", topic_codec(codec, "order.events", None)),
            ("wire", topic_codec(codec, "order.events", registry)),
        ):
            value = wrapped.encode(record)
            assert wrapped.decode(value) == record
            rows.append(
                (
                    f"{label}: {mode}",
                    _per_call_us(partial(wrapped.encode, record), iterations, repeats),
                    _per_call_us(partial(wrapped.decode, value), iterations, repeats),
                    len(value),
                )
            )
    return rows


def main() -> None:
    """Run the measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000, help="calls per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs; the median is shown")
    args = parser.parse_args()
    print(f"{'codec':<34} {'encode µs':>10} {'decode µs':>10} {'bytes':>6}")
    for label, encode_us, decode_us, size in _rows(args.iterations, args.repeats):
        print(f"{label:<34} {encode_us:>10.2f} {decode_us:>10.2f} {size:>6}")


if __name__ == "__main__":
    main()
