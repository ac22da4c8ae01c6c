"""A process killed without closing its RocksDB store leaves data matching the stored offset."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from processors.store import RocksDBOptions, RocksDBPartitionStore

WRITES = 3000
KEYS = 50

# Each write i sets one of KEYS keys and b"last" to i, with changelog offset i; small
# memtables make RocksDB flush (or not) at arbitrary points before the process dies.
_WRITER = textwrap.dedent(
    """
    import os, sys
    from processors.store import RocksDBOptions, RocksDBPartitionStore
    options = RocksDBOptions(disable_wal=sys.argv[2] == "off", write_buffer_size=64 * 1024)
    store = RocksDBPartitionStore(sys.argv[1], 0, options)
    for i in range({writes}):
        store.write({{b"k%d" % (i % {keys}): b"v%d" % i, b"last": b"%d" % i}}, i)
    os._exit(0)
    """
).format(writes=WRITES, keys=KEYS)


def _model_after(offset: int) -> dict[bytes, bytes]:
    model: dict[bytes, bytes] = {}
    for i in range(offset + 1):
        model[b"k%d" % (i % KEYS)] = b"v%d" % i
        model[b"last"] = b"%d" % i
    return model


@pytest.mark.parametrize("wal", ["on", "off"])
def test_crash_leaves_data_consistent_with_the_offset(tmp_path: Path, wal: str) -> None:
    path = tmp_path / "db"
    subprocess.run([sys.executable, "-c", _WRITER, str(path), wal], check=True, timeout=120)
    store = RocksDBPartitionStore(path, 0, RocksDBOptions(open_max_retries=0))
    try:
        offset = store.changelog_offset()
        contents = dict(store.iter_range(b""))
    finally:
        store.close()
    if wal == "on":
        # The WAL reaches the OS on every write, so a process crash loses nothing.
        assert offset == WRITES - 1
    if offset is None:
        assert contents == {}
    else:
        assert contents == _model_after(offset)
