"""The figures a peer reports for one closed-loop run: throughput and latency percentiles.

Plain stdlib so that both the project's interpreter and the peers' one can use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile_ms(ordered_s: Sequence[float], q: float) -> float | None:
    """Return the nearest-rank ``q`` quantile (0 < q <= 1) of sorted seconds, in milliseconds."""
    if not 0 < q <= 1:
        raise ValueError(f"a quantile is in (0, 1], not {q}")
    if not ordered_s:
        return None
    rank = max(1, math.ceil(q * len(ordered_s)))
    return round(1000 * ordered_s[rank - 1], 1)


def window_figures(latencies_s: Sequence[float], window_s: float) -> dict[str, Any]:
    """Summarize the start→completed latencies of the sagas that completed in the window."""
    if window_s <= 0:
        raise ValueError(f"the measuring window must be positive, not {window_s} s")
    ordered = sorted(latencies_s)
    return {
        "window_s": window_s,
        "completed_in_window": len(ordered),
        "sagas_per_s": round(len(ordered) / window_s, 1),
        "p50_ms": percentile_ms(ordered, 0.50),
        "p99_ms": percentile_ms(ordered, 0.99),
    }
