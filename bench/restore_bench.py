"""Measure how fast a changelog partition is restored into a store, in records per second.

Writes N records (keys cycling over a key space, values of a fixed size) to a fresh
changelog topic in committed transactions, then restores partition 0 into an empty store
and prints the rate. Run against the local broker (``sagas dev broker``):

    .venv/bin/python bench/restore_bench.py --bootstrap 127.0.0.1:9092 --records 1000000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from processors.store import (
    ChangelogRestorer,
    MemoryStore,
    RocksDBOptions,
    RocksDBStore,
    Store,
)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("SAGAS_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="bootstrap servers of the broker (default: $SAGAS_BOOTSTRAP_SERVERS or :9092)",
    )
    parser.add_argument("--records", type=int, default=500_000, help="changelog records")
    parser.add_argument("--keys", type=int, default=100_000, help="distinct keys among them")
    parser.add_argument("--value-size", type=int, default=200, help="bytes per value")
    parser.add_argument("--txn-records", type=int, default=5_000, help="records per transaction")
    parser.add_argument("--backend", choices=["rocksdb", "memory"], default="rocksdb")
    parser.add_argument("--no-wal", action="store_true", help="RocksDB without its WAL")
    parser.add_argument("--chunk-size", type=int, default=10_000, help="records per store write")
    return parser.parse_args()


def _fill(config: dict[str, str], topic: str, args: argparse.Namespace) -> float:
    producer = Producer(
        {
            **config,
            "transactional.id": f"{topic}-bench",
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    producer.init_transactions(30)
    value = os.urandom(args.value_size // 2).hex().encode()[: args.value_size]
    started = time.perf_counter()
    written = 0
    while written < args.records:
        producer.begin_transaction()
        for number in range(written, min(written + args.txn_records, args.records)):
            key = b"w%012d" % (number % args.keys)
            producer.produce(topic, value, key, partition=0)
        written = min(written + args.txn_records, args.records)
        producer.commit_transaction(60)
    return time.perf_counter() - started


def main() -> None:
    """Fill a changelog, restore it, print the rate."""
    args = _parse_args()
    config = {"bootstrap.servers": args.bootstrap}
    topic = f"restore-bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(config)
    new_topic = NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})
    admin.create_topics([new_topic])[topic].result(timeout=30)
    try:
        fill_seconds = _fill(config, topic, args)
        print(f"produced {args.records} records in {fill_seconds:.1f}s")
        with tempfile.TemporaryDirectory() as state_dir:
            store: Store = (
                RocksDBStore(state_dir, "bench", topic, RocksDBOptions(disable_wal=args.no_wal))
                if args.backend == "rocksdb"
                else MemoryStore()
            )
            with ChangelogRestorer(config, topic, chunk_size=args.chunk_size) as restorer:
                result = restorer.restore(store.partition(0))
            keys = sum(1 for _ in store.partition(0).iter_range(b""))
            store.close()
        rate = result.records / result.seconds
        print(
            f"restored {result.records} records ({keys} keys) into {args.backend} "
            f"in {result.seconds:.2f}s: {rate:,.0f} records/s"
        )
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)


if __name__ == "__main__":
    main()
