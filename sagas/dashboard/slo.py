"""The service-level panel: dispatch latency and step durations, asked of Prometheus.

The workers export ``sagas_step_dispatch_seconds`` (command created to action started) and
``sagas_step_duration_seconds``, both per saga and step. The panel shows
their quantiles over a window as Prometheus computes them; with no Prometheus configured
it shows nothing but says so.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sagas.errors import SagaError

DISPATCH_OBJECTIVE_S = 0.05
"""The design's goal: 99% of commands start their action within 50 ms of being created."""
WINDOW = "5m"
_TIMEOUT_S = 5.0


class PrometheusError(SagaError):
    """Prometheus could not be asked, or answered with an error."""


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """Quantiles of one latency series; None where Prometheus has no samples in the window."""

    saga: str
    label: str
    p50_s: float | None
    p99_s: float | None

    @property
    def meets_dispatch_objective(self) -> bool | None:
        return None if self.p99_s is None else self.p99_s <= DISPATCH_OBJECTIVE_S


@dataclass(frozen=True, slots=True)
class SloPanel:
    """What the panel shows: dispatch latency and duration, per step."""

    dispatch: tuple[LatencyRow, ...]
    steps: tuple[LatencyRow, ...]


class PrometheusSlo:
    """Asks one Prometheus server for the quantiles of the workers' latency histograms."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def panel(self, sagas: Sequence[str]) -> SloPanel:
        return SloPanel(
            dispatch=self._rows("sagas_step_dispatch_seconds", "step", sagas),
            steps=self._rows("sagas_step_duration_seconds", "step", sagas),
        )

    def _rows(self, metric: str, label: str, sagas: Sequence[str]) -> tuple[LatencyRow, ...]:
        quantiles = {q: self._quantile(metric, label, q) for q in (0.5, 0.99)}
        keys = sorted(set(quantiles[0.5]) | set(quantiles[0.99]))
        return tuple(
            LatencyRow(saga, value, quantiles[0.5].get((saga, value)),
                       quantiles[0.99].get((saga, value)))
            for saga, value in keys
            if saga in sagas
        )  # fmt: skip

    def _quantile(self, metric: str, label: str, q: float) -> dict[tuple[str, str], float]:
        expr = (
            f"histogram_quantile({q}, sum by (saga, {label}, le) (rate({metric}_bucket[{WINDOW}])))"
        )
        result = self._query(expr)
        values = {}
        for sample in result:
            labels = sample.get("metric", {})
            try:
                seconds = float(sample["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if math.isnan(seconds) or math.isinf(seconds):
                continue  # no samples in the window, or every one past the last bucket
            values[(str(labels.get("saga", "")), str(labels.get(label, "")))] = seconds
        return values

    def _query(self, expr: str) -> list[dict[str, Any]]:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(address, timeout=_TIMEOUT_S) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise PrometheusError(f"asking Prometheus at {self.url} failed: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus answered: {body.get('error', 'an error')}")
        result = body.get("data", {}).get("result", [])
        return result if isinstance(result, list) else []
