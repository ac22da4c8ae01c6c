"""Making changelog partitions hold given contents, in a Kafka transaction each.

``sagas replay`` makes the changelog agree with the store its fold rebuilt, and
``sagas reset`` empties it; both write only the keys whose value differs, and
tombstones for the keys to go.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import timedelta

from confluent_kafka import KafkaError, KafkaException, Producer

from processors.log_reading import client_config
from processors.store.base import Store
from processors.store.changelog import ChangelogWriter
from processors.store.memory import MemoryPartitionStore
from processors.store.recovery import ChangelogRestorer
from sagas.config import KafkaSettings
from sagas.errors import KafkaUnavailableError
from topics.client_configs import transactional_producer_config
from topics.naming import TopicNames


class ChangelogRewrite:
    """Makes changelog partitions hold given contents, with as few records as it takes."""

    def __init__(self, kafka: KafkaSettings, saga: str, writer: str = "replay") -> None:
        """``writer`` names the transactional producer (``<group>.<writer>``): a writer
        that starts again under the same name fences a transaction left open by an
        earlier one that died, instead of waiting out its timeout."""
        names = TopicNames(saga, kafka.topic_prefix)
        config = client_config(kafka)
        self._topic = names.state_changelog
        self._restorer = ChangelogRestorer(config, names.state_changelog)
        self._producer = Producer(
            transactional_producer_config(
                kafka, f"{names.processor_group}.{writer}", timedelta(seconds=60)
            )
            | {"logger": config["logger"]}
        )
        try:
            init_transactions(self._producer)
        except KafkaException as exc:
            self._restorer.close()
            raise KafkaUnavailableError(f"cannot write {self._topic}: {_kafka_text(exc)}") from exc
        self._writer = ChangelogWriter(self._producer, names.state_changelog)
        self._current: dict[int, MemoryPartitionStore] = {}

    def agree(self, partition: int, content: Mapping[bytes, bytes]) -> tuple[int, int | None]:
        """Write what makes changelog ``partition`` hold ``content`` (one transaction: the
        keys whose value differs, tombstones for the keys not in it); returns how many
        records that took and the offset of the partition's last record."""
        current = self._current.pop(partition, None)
        if current is None:
            current = self._read(partition)
        held = dict(current.iter_range(b""))
        changes: Mapping[bytes, bytes | None]
        if not held:
            changes = content  # an empty (or deleted) changelog: every key is a change
        else:
            differing: dict[bytes, bytes | None] = dict.fromkeys(held.keys() - content.keys())
            for key, value in content.items():
                if held.get(key) != value:
                    differing[key] = value
            changes = differing
        if not changes:
            return 0, current.changelog_offset()
        try:
            self._producer.begin_transaction()
            self._writer.produce(partition, changes)
            self._producer.commit_transaction(60)
        except KafkaException as exc:
            raise KafkaUnavailableError(f"writing {self._topic} failed: {exc}") from exc
        offsets = self._writer.take_offsets()
        return len(changes), offsets.get(partition, current.changelog_offset())

    def read_current(self, partitions: Iterable[int]) -> None:
        """Read what changelog ``partitions`` hold now, for :meth:`agree` to compare with."""
        for partition in partitions:
            self._current[partition] = self._read(partition)

    def _read(self, partition: int) -> MemoryPartitionStore:
        current = MemoryPartitionStore(partition)
        self._restorer.restore(current)
        return current

    def close(self) -> None:
        """Release the producer and the restore consumers."""
        self._restorer.close()
        self._producer.flush(10)


INIT_TRANSACTIONS_S = 60.0
"""How long a replay waits for the transaction coordinator (it loads on a fresh broker)."""

_COORDINATOR_LOADING = frozenset({
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR, KafkaError._TIMED_OUT,
})  # fmt: skip


def init_transactions(producer: Producer, timeout_s: float = INIT_TRANSACTIONS_S) -> None:
    """Initialize ``producer``'s transactions, trying again while the coordinator loads:
    on a broker just started, its transaction log is still being loaded, and the first
    attempts are answered "Coordinator load in progress" or time out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            producer.init_transactions(min(10.0, max(1.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            loading = isinstance(error, KafkaError) and (
                error.code() in _COORDINATOR_LOADING or error.retriable()
            )
            if not loading or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _kafka_text(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else exc
    return error.str() if isinstance(error, KafkaError) else str(error)


def rewrite_partition(
    rewrite: ChangelogRewrite, store: Store, partition: int, content: Mapping[bytes, bytes]
) -> int:
    """Make changelog ``partition`` and its local store hold ``content``: the changelog
    first, then the store, cleared and written with the changelog's offset beside the
    data (so a processor starting on it restores nothing). Returns the changelog records
    it took."""
    written, offset = rewrite.agree(partition, content)
    local = store.partition(partition)
    local.clear()
    local.write(content, offset)
    store.close_partition(partition)
    return written
