"""How many worker processes a replay folds in by default, given the cores."""

from __future__ import annotations

import pytest

from processors import replay
from processors.replay import default_workers


@pytest.mark.parametrize(
    ("cores", "partitions", "workers"),
    [
        (2, 3, 3),  # side by side: no core idles while the other folds the third
        (2, 4, 4),
        (2, 2, 2),
        (2, 1, 2),  # fold_log folds a single partition in its own process anyway
        (2, 5, 2),  # beyond twice the cores, one per core: each holds a partition's fold
        (2, 12, 2),
        (8, 12, 12),
        (8, 24, 8),
    ],
)
def test_default_workers(
    monkeypatch: pytest.MonkeyPatch, cores: int, partitions: int, workers: int
) -> None:
    monkeypatch.setattr(replay.os, "cpu_count", lambda: cores)
    assert default_workers(partitions) == workers
