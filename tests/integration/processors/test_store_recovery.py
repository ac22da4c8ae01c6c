"""Changelog restore against a real broker: committed writes only, from the stored offset."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from processors.store import (
    ChangelogRestoreError,
    ChangelogRestorer,
    ChangelogWriteError,
    ChangelogWriter,
    MemoryPartitionStore,
    PartitionStore,
    RocksDBStore,
    Store,
    StoreError,
)
from processors.store.memory import MemoryStore

Changes = Mapping[bytes, bytes | None]


class _Changelog:
    """A compacted changelog topic and a transactional producer writing to it."""

    def __init__(self, config: dict[str, Any], topic: str, transactional_id: str) -> None:
        self.config = config
        self.topic = topic
        self.producer = Producer(
            {**config, "transactional.id": transactional_id, "enable.idempotence": True}
        )
        self.producer.init_transactions(30)
        self.writer = ChangelogWriter(self.producer, topic)

    def commit(self, changes: Changes, partition: int = 0) -> int:
        """Write ``changes`` in one committed transaction; return the last record's offset."""
        self.producer.begin_transaction()
        self.writer.produce(partition, changes)
        self.producer.commit_transaction(30)
        return self.writer.take_offsets()[partition]

    def abort(self, changes: Changes, partition: int = 0) -> None:
        """Write ``changes`` in a transaction that is then aborted."""
        self.producer.begin_transaction()
        self.writer.produce(partition, changes)
        self.producer.flush(30)
        self.producer.abort_transaction(30)
        self.writer.discard()

    def restorer(self, **options: Any) -> ChangelogRestorer:
        return ChangelogRestorer(self.config, self.topic, **options)


@pytest.fixture
def changelog(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> Iterator[_Changelog]:
    topic = unique_name("changelog")
    admin = AdminClient(kafka_config)
    new_topic = NewTopic(topic, 2, 1, config={"cleanup.policy": "compact"})
    admin.create_topics([new_topic])[topic].result(timeout=30)
    log = _Changelog(kafka_config, topic, unique_name("txn"))
    yield log
    log.producer.flush(10)


@pytest.fixture(params=["memory", "rocksdb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    manager: Store = (
        MemoryStore() if request.param == "memory" else RocksDBStore(tmp_path, "g", "t")
    )
    yield manager
    manager.close()


def _contents(store: PartitionStore) -> dict[bytes, bytes]:
    return dict(store.iter_range(b""))


def test_restore_applies_committed_transactions_only(changelog: _Changelog, stores: Store) -> None:
    changelog.commit({b"a": b"1", b"b": b"2", b"c": b"3"})
    changelog.abort({b"a": b"aborted", b"d": b"aborted"})
    last = changelog.commit({b"b": None, b"e": b""})
    store = stores.partition(0)
    with changelog.restorer() as restorer:
        result = restorer.restore(store)
    assert _contents(store) == {b"a": b"1", b"c": b"3", b"e": b""}
    assert store.changelog_offset() == last
    assert result.records == 5
    assert result.start_offset == 0
    assert not result.rebuilt


def test_restore_from_stored_offset_applies_only_the_tail(
    changelog: _Changelog, stores: Store
) -> None:
    head = changelog.commit({b"a": b"1", b"b": b"2"})
    store = stores.partition(0)
    # As the processor does after its commit; "local" proves the head is not replayed.
    store.write({b"a": b"local", b"b": b"2"}, head)
    last = changelog.commit({b"b": b"3", b"c": b"4"})
    with changelog.restorer() as restorer:
        result = restorer.restore(store)
    assert _contents(store) == {b"a": b"local", b"b": b"3", b"c": b"4"}
    assert result.start_offset == head + 1
    assert result.records == 2
    assert store.changelog_offset() == last


def test_restore_of_an_up_to_date_store_reads_nothing(changelog: _Changelog) -> None:
    last = changelog.commit({b"a": b"1"})
    store = MemoryPartitionStore()
    store.write({b"a": b"1"}, last)
    with changelog.restorer() as restorer:
        result = restorer.restore(store)
    assert result.records == 0
    assert result.start_offset == last + 1
    assert result.end_offset == last + 2  # the commit marker follows the last record
    assert store.changelog_offset() == last


def test_restore_ends_at_a_log_that_ends_in_an_aborted_transaction(
    changelog: _Changelog,
) -> None:
    last = changelog.commit({b"a": b"1"})
    changelog.abort({b"a": b"2", b"b": b"2"})
    store = MemoryPartitionStore()
    with changelog.restorer() as restorer:
        result = restorer.restore(store)
    assert _contents(store) == {b"a": b"1"}
    assert store.changelog_offset() == last
    assert result.records == 1
    assert result.seconds < 10


def test_restore_does_not_wait_for_an_open_transaction(
    changelog: _Changelog, unique_name: Callable[[str], str]
) -> None:
    changelog.commit({b"a": b"1"})
    other = _Changelog(changelog.config, changelog.topic, unique_name("open"))
    other.producer.begin_transaction()
    other.writer.produce(0, {b"a": b"pending"})
    other.producer.flush(30)
    store = MemoryPartitionStore()
    try:
        with changelog.restorer() as restorer:
            result = restorer.restore(store)
    finally:
        other.producer.abort_transaction(30)
    assert _contents(store) == {b"a": b"1"}
    assert result.records == 1


def test_restore_reads_only_its_own_partition(changelog: _Changelog, stores: Store) -> None:
    changelog.commit({b"zero": b"0"}, partition=0)
    changelog.commit({b"one": b"1"}, partition=1)
    with changelog.restorer() as restorer:
        restorer.restore(stores.partition(0))
        restorer.restore(stores.partition(1))
    assert _contents(stores.partition(0)) == {b"zero": b"0"}
    assert _contents(stores.partition(1)) == {b"one": b"1"}


def test_store_ahead_of_the_log_is_rebuilt_from_it(changelog: _Changelog, stores: Store) -> None:
    last = changelog.commit({b"a": b"1"})
    store = stores.partition(0)
    store.write({b"stale": b"x"}, last + 1000)
    with changelog.restorer() as restorer:
        result = restorer.restore(store)
    assert result.rebuilt
    assert _contents(store) == {b"a": b"1"}
    assert store.changelog_offset() == last


class _FailingStore(MemoryPartitionStore):
    """Fails its second write, as a crash in the middle of a restore would."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def _write(self, changes: Changes, changelog_offset: int | None) -> None:
        self.writes += 1
        if self.writes == 2:
            raise StoreError("disk full")
        super()._write(changes, changelog_offset)


def test_interrupted_restore_resumes_from_the_last_chunk(changelog: _Changelog) -> None:
    for number in range(5):
        changelog.commit({f"k{number}".encode(): f"v{number}".encode()})
    store = _FailingStore()
    with changelog.restorer(chunk_size=2) as restorer:
        with pytest.raises(StoreError, match="disk full"):
            restorer.restore(store)
        resumed_from = store.changelog_offset()
        assert resumed_from is not None
        result = restorer.restore(store)
    assert result.start_offset == resumed_from + 1
    assert _contents(store) == {f"k{n}".encode(): f"v{n}".encode() for n in range(5)}


def test_undelivered_changelog_records_are_reported(changelog: _Changelog) -> None:
    changelog.producer.begin_transaction()
    # The topic has two partitions: a record for partition 7 cannot be delivered.
    changelog.writer.produce(7, {b"a": b"1"})
    changelog.producer.flush(30)
    with pytest.raises(ChangelogWriteError, match="not delivered") as raised:
        changelog.writer.take_offsets()
    assert raised.value.partition == 7
    assert raised.value.topic == changelog.topic
    changelog.producer.abort_transaction(30)


def test_restore_from_a_missing_topic_fails_clearly(
    kafka_config: dict[str, Any], unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("missing")
    with (
        ChangelogRestorer(kafka_config, topic, timeout=timedelta(seconds=5)) as restorer,
        pytest.raises(ChangelogRestoreError, match="watermarks") as raised,
    ):
        restorer.restore(MemoryPartitionStore())
    assert raised.value.topic == topic


def _open_transaction(changelog: _Changelog, transactional_id: str) -> _Changelog:
    """Another producer with a transaction left open on partition 0, as a stalled owner's."""
    other = _Changelog(changelog.config, changelog.topic, transactional_id)
    other.producer.begin_transaction()
    other.writer.produce(0, {b"a": b"pending"})
    other.producer.flush(30)
    return other


def test_restore_waits_for_a_transaction_open_before_the_stored_offset(
    changelog: _Changelog, unique_name: Callable[[str], str]
) -> None:
    other = _open_transaction(changelog, unique_name("open"))
    last = changelog.commit({b"a": b"1"})
    store = MemoryPartitionStore()
    # The processor writes its store once its own transaction commits, even though the
    # older open transaction keeps the stable end of the partition before that record.
    store.write({b"a": b"1"}, last)
    aborter = threading.Timer(1.0, other.producer.abort_transaction, args=(30,))
    aborter.start()
    try:
        with changelog.restorer() as restorer:
            result = restorer.restore(store)
    finally:
        aborter.join()
    assert not result.rebuilt
    assert result.seconds >= 0.5
    assert _contents(store) == {b"a": b"1"}
    assert store.changelog_offset() == last


def test_restore_gives_up_on_a_transaction_that_stays_open(
    changelog: _Changelog, unique_name: Callable[[str], str]
) -> None:
    other = _open_transaction(changelog, unique_name("open"))
    last = changelog.commit({b"a": b"1"})
    store = MemoryPartitionStore()
    store.write({b"a": b"1"}, last)
    try:
        with (
            changelog.restorer(timeout=timedelta(seconds=2)) as restorer,
            pytest.raises(ChangelogRestoreError, match="left open") as raised,
        ):
            restorer.restore(store)
    finally:
        other.producer.abort_transaction(30)
    assert raised.value.offset == last
    assert _contents(store) == {b"a": b"1"}
