"""Fixtures that run the store contract suite against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.store import MemoryStore, RocksDBOptions, RocksDBStore, Store

# A locked database must fail at once in tests instead of retrying for seconds.
FAST_OPTIONS = RocksDBOptions(open_max_retries=0, block_cache_size=4 * 1024 * 1024)


def make_store(backend: str, state_dir: Path) -> Store:
    """A store manager of the named backend."""
    if backend == "memory":
        return MemoryStore()
    return RocksDBStore(state_dir, "group", "topic", FAST_OPTIONS)


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store manager of each backend in turn, closed after the test."""
    manager = make_store(request.param, tmp_path)
    yield manager
    manager.close()
