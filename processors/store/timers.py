"""Reading the due-time index of durable timers (its keys: :mod:`processors.store.keys`).

The index sorts by due time, so the due timers are a range scan from the start of the
``t`` prefix up to ``now``, never a full scan, however many timers are pending.
"""

from __future__ import annotations

from processors.store.base import RangeReader
from processors.store.errors import InvalidStoreDataError
from processors.store.keys import (
    TIMER_PREFIX,
    TimerEntry,
    parse_timer_key,
    prefix_end,
    timers_due_by,
)


def due_timers(
    reader: RangeReader,
    now_ms: int,
    limit: int,
    *,
    after: TimerEntry | None = None,
) -> list[tuple[TimerEntry, bytes]]:
    """Up to ``limit`` timers due at ``now_ms`` (``due_ms <= now_ms``), earliest first.

    ``after`` continues a listing past the last entry of a previous one. ``reader`` is a
    partition store or a transaction (whose staged timers then count).
    """
    if limit < 0:
        raise InvalidStoreDataError(f"limit must be >= 0, got {limit}")
    start = TIMER_PREFIX if after is None else after.key + b"\0"
    return [
        (parse_timer_key(key), payload)
        for key, payload in reader.iter_range(start, timers_due_by(now_ms), limit=limit)
    ]


def next_due_ms(reader: RangeReader) -> int | None:
    """When the earliest pending timer is due, or ``None`` if there is none."""
    for key, _ in reader.iter_range(TIMER_PREFIX, prefix_end(TIMER_PREFIX), limit=1):
        return parse_timer_key(key).due_ms
    return None


def count_timers(reader: RangeReader) -> int:
    """How many timers are pending (a scan of the index: run it on assignment, not per batch)."""
    return sum(1 for _ in reader.iter_range(TIMER_PREFIX, prefix_end(TIMER_PREFIX)))
