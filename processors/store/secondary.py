"""Reading a partition's RocksDB database from another process, as a secondary instance.

A secondary sees what the primary (the saga processor) has written once it catches up
with the primary's write-ahead log and manifest; the reader catches up before every
read that finds the primary's log grown, so a read sees every write the processor made
before it. (A catch-up costs 50 to 100 µs even when nothing was written; one stat of the
log tells that nothing was.) It never reads a partition the processor does not hold:
the processor withdraws a partition from its query process before it lets it go.

A catch-up alone is not enough. Values the secondary replayed from a log file stay in
its memtable, which reads consult first, and when the primary flushes and deletes that
file before the secondary has read all of it, the newer values the file held reach the
secondary only as table files, which that memtable shadows until it is rebuilt
(RocksDB issues 14444 and 15051); after a new manifest, a secondary of a database with
atomic flush may stop installing versions (RocksDB pull request 14439). So when a log
file it has seen is gone, or the manifest is another, the reader opens the secondary
anew instead, which replays only the log files there are.

Listing the primary's directory costs about what a catch-up does in a directory of many
table files, so the reader lists it again only when the directory's modification time
says an entry was created, removed or renamed since the last listing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import rocksdict

from processors.store.base import RangeReader
from processors.store.errors import StoreError
from processors.store.options import RocksDBOptions
from processors.store.rocksdb import DirectReader

SETTLED_NS = 100_000_000
"""How long after a directory's modification time a listing must be taken to stand for
it: the time comes from a coarse clock, so a change made in the same tick as a listing
leaves it as it was, and only a listing taken well after it shows every change."""


class SecondaryReader:
    """A read-only view of one partition's database, caught up with its writer on demand."""

    def __init__(
        self,
        primary: str,
        scratch: Path,
        partition: int,
        *,
        cache: rocksdict.Cache,
        options: RocksDBOptions | None = None,
    ) -> None:
        self.partition = partition
        self.path = primary
        # A secondary keeps its own info log here; the data stays the primary's.
        self._scratch = scratch
        self._options = (options or RocksDBOptions()).to_options(cache)
        # Files the primary deletes after a compaction stay readable while open: a
        # secondary must hold every file it reads open rather than reopen it later.
        self._options.set_max_open_files(-1)
        # With several, every catch-up that installs a version starts threads to open
        # its table files: 2.4 ms of CPU a catch-up instead of 0.04 ms.
        self._options.set_max_file_opening_threads(1)
        self._listing: tuple[int, tuple[frozenset[str], str]] | None = None
        """The directory's modification time and what a listing taken well after it
        found, which stands while that time does."""
        self._files = self._primary_files()
        self._written = self._log_length(self._files)
        self._db = self._open()
        self.reopened = 0
        """How often the secondary was opened anew (see the module's docstring)."""

    def concurrent_reader(self) -> RangeReader:
        """Reads of the database as the processor last wrote it.

        Callers hold the partition's gate (:class:`processors.query_service.PartitionGates`)
        while they read, so no other read of this partition is under way when the
        secondary catches up or is opened anew here.
        """
        self._catch_up()
        return DirectReader(self._db)

    def _catch_up(self) -> None:
        files = self._primary_files()
        # Taken before catching up: what the primary appends meanwhile counts as unread.
        written = self._log_length(files)
        if files == self._files and written is not None and written == self._written:
            return  # nothing written since the last catch-up: there is nothing to read
        (logs, manifest), (now_logs, now_manifest) = self._files, files
        if logs - now_logs or manifest != now_manifest:
            stale, self._db = self._db, self._open()
            stale.close()
            self.reopened += 1
        else:
            try:
                self._db.try_catch_up_with_primary()
            except Exception as exc:
                raise StoreError(
                    f"catching up with the processor's store failed: {exc}",
                    path=self.path,
                    partition=self.partition,
                ) from exc
        # Only once caught up: a failed reopen or catch-up is tried again next time.
        self._files, self._written = files, written

    def _log_length(self, files: tuple[frozenset[str], str]) -> int | None:
        """The length of the log file the primary appends to, the newest: every write
        lands there first. None when there is none, or it went as it was looked at."""
        logs = files[0]
        if not logs:
            return None
        newest = max(logs, key=lambda name: int(name.removesuffix(".log")))
        try:
            return os.stat(os.path.join(self.path, newest)).st_size
        except OSError:
            return None

    def _primary_files(self) -> tuple[frozenset[str], str]:
        """The primary's log files and the manifest it names current."""
        try:
            changed = os.stat(self.path).st_mtime_ns
            if self._listing is not None and self._listing[0] == changed:
                return self._listing[1]
            listed = time.time_ns()
            logs = frozenset(
                name
                for name in os.listdir(self.path)
                if name.endswith(".log") and name.removesuffix(".log").isdigit()
            )
            with open(os.path.join(self.path, "CURRENT")) as current:
                files = logs, current.read()
            self._listing = (changed, files) if listed - changed > SETTLED_NS else None
            return files
        except OSError as exc:
            raise StoreError(
                f"cannot read the store's files: {exc}", path=self.path, partition=self.partition
            ) from exc

    def _open(self) -> rocksdict.Rdict:
        try:
            return rocksdict.Rdict(
                self.path,
                self._options,
                access_type=rocksdict.AccessType.secondary(str(self._scratch)),
            )
        except Exception as exc:
            raise StoreError(
                f"cannot open the store as a secondary: {exc}",
                path=self.path,
                partition=self.partition,
            ) from exc

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._scratch, ignore_errors=True)
