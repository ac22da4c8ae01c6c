"""How many records a topic's partitions hold, for what ``sagas reset --dry-run`` shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topics.admin import admin_client
from topics.offset_reads import topic_partitions, watermarks


def records_held(config: Mapping[str, Any], topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """How many offsets each partition of ``topic`` spans (its end minus its log start)."""
    client = admin_client(config)
    starts, ends = watermarks(
        client, topic_partitions(client, [topic], timeout_s), timeout_s, "read_uncommitted"
    )
    return {p: ends[(t, p)] - start for (t, p), start in starts.items()}
