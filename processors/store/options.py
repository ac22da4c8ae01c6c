"""RocksDB settings of the state store, tuned for small values, point reads and timer scans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import rocksdict

CompressionType = Literal["none", "snappy", "lz4", "zstd"]

_COMPRESSION: dict[CompressionType, rocksdict.DBCompressionType] = {
    "none": rocksdict.DBCompressionType.none(),
    "snappy": rocksdict.DBCompressionType.snappy(),
    "lz4": rocksdict.DBCompressionType.lz4(),
    "zstd": rocksdict.DBCompressionType.zstd(),
}


@dataclass(frozen=True)
class RocksDBOptions:
    """How each partition's RocksDB database is opened and written."""

    write_buffer_size: int = 32 * 1024 * 1024
    """Bytes of one memtable; states are small, so this holds a great many of them."""

    max_write_buffer_number: int = 3
    """Memtables kept before writes stall while one is flushed."""

    target_file_size_base: int = 32 * 1024 * 1024
    """Size of the SST files of level 1."""

    block_cache_size: int = 64 * 1024 * 1024
    """Bytes of the block cache shared by all partitions of one store."""

    bloom_filter_bits_per_key: int = 10
    """Bloom filter bits per key (about 1% false positives), so a point read of a
    missing workflow rarely touches disk."""

    compression: CompressionType = "lz4"
    """Block compression: lz4 costs little CPU for small Avro or JSON values."""

    disable_wal: bool = False
    """Skip RocksDB's write-ahead log (it is never synced to disk either way).

    Turning it off is safe for correctness: every write is in the changelog topic before it
    reaches RocksDB, the offset is written in the same batch as the data, and
    ``atomic_flush`` (always on) flushes data and offset together, so a crash loses only a
    suffix of writes that a restore replays from the stored offset. It stays on by default
    because it costs about 5 µs per checkpoint write (one per Kafka transaction) while
    without it a crash throws away everything since the last memtable flush, which on a
    quiet partition may be days old: the restore is then long, and a tombstone compacted
    away from the changelog in the meantime (``delete.retention.ms``) would bring a
    deleted key back.
    """

    max_total_wal_size: int = 128 * 1024 * 1024
    """WAL bytes above which the memtables are flushed so that old WAL files can go."""

    deletion_compaction_window: int = 1024
    """Entries in the sliding window of the deletion-triggered compaction."""

    deletion_compaction_trigger: int = 512
    """Tombstones in that window which mark an SST file for compaction: fired timers
    are deleted from the front of the due-time index, and scans from there must not
    wade through their tombstones for long."""

    max_background_jobs: int = 2
    """Background flush and compaction threads (the box running a worker is small)."""

    open_max_retries: int = 10
    """Times to retry opening a database whose lock is still held (a previous owner of
    the partition in another process may be closing it). 0 disables retrying."""

    open_retry_backoff: timedelta = timedelta(seconds=1)
    """Wait between two attempts to open a locked database."""

    def to_options(self, cache: rocksdict.Cache | None = None) -> rocksdict.Options:
        """Build the ``rocksdict.Options`` (raw mode: bytes only, nothing pickled).

        ``cache`` is a block cache to share between databases; one of
        ``block_cache_size`` is made when it is not given.
        """
        opts = rocksdict.Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        # Data and offset live in two column families; without a WAL only an atomic
        # flush guarantees that the flushed offset never runs ahead of the flushed data,
        # and with one it lets the WAL go even though the offset's family is tiny.
        opts.set_atomic_flush(True)
        opts.set_write_buffer_size(self.write_buffer_size)
        opts.set_max_write_buffer_number(self.max_write_buffer_number)
        opts.set_target_file_size_base(self.target_file_size_base)
        opts.set_max_background_jobs(self.max_background_jobs)
        opts.set_compression_type(_COMPRESSION[self.compression])
        # fsync buys nothing here: whatever an OS crash loses is replayed from the changelog.
        opts.set_use_fsync(False)
        opts.set_keep_log_file_num(2)
        opts.set_max_total_wal_size(self.max_total_wal_size)
        opts.add_compact_on_deletion_collector_factory(
            self.deletion_compaction_window, self.deletion_compaction_trigger, 0.5
        )
        table = rocksdict.BlockBasedOptions()
        table.set_block_cache(
            cache if cache is not None else rocksdict.Cache(self.block_cache_size)
        )
        table.set_bloom_filter(self.bloom_filter_bits_per_key, False)
        opts.set_block_based_table_factory(table)
        return opts

    def write_options(self) -> rocksdict.WriteOptions:
        """Build the ``rocksdict.WriteOptions`` every write uses."""
        write_opts = rocksdict.WriteOptions()
        # rocksdict's stubs declare a method, but at run time this is a property.
        write_opts.disable_wal = self.disable_wal  # type: ignore[method-assign,assignment]
        write_opts.sync = False
        return write_opts
