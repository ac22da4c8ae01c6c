"""Restorer settings are checked before any connection is made."""

from __future__ import annotations

import pytest

from processors.store import ChangelogRestorer, StoreError


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(StoreError, match="chunk_size must be >= 1, got 0"):
        ChangelogRestorer({"bootstrap.servers": "127.0.0.1:1"}, "changelog", chunk_size=0)
