"""``sagas reset``: make the saga processor start over, as Kafka Streams' reset tool does.

While the processor group has no live member: its committed offsets on ``S.events`` go
to the log start (or the first record at a time), its local stores are deleted, and its
changelog is emptied (a tombstone for every key), so that the next start builds its
state again from what it reads instead of restoring the state it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from confluent_kafka import KafkaException

from processors.changelog_rewrite import ChangelogRewrite
from processors.log_reading import check_reachable, client_config
from processors.store.rocksdb import RocksDBStore
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from sagas.errors import KafkaUnavailableError
from topics.admin import admin_client
from topics.naming import TopicNames
from topics.offset_reads import committed_offsets, topic_partitions
from topics.offset_reset import OffsetChange, require_inactive, reset_offsets
from topics.record_counts import records_held


@dataclass(frozen=True, slots=True)
class ResetPlan:
    """What a reset does (or, with a dry run, would do)."""

    group: str
    events_topic: str
    to: str
    """``earliest`` or the ISO time the offsets go to."""
    committed: dict[int, int | None]
    """The group's committed offsets now, per partition of ``S.events``."""
    store_paths: tuple[Path, ...]
    """The local stores that are deleted (those that exist)."""
    changelog_topic: str
    changelog_records: dict[int, int]
    """Records the changelog holds per partition; each key it holds gets a tombstone."""
    offsets: tuple[OffsetChange, ...] = ()
    """The offsets moved (empty on a dry run)."""


def reset_processor(
    versions: SagaVersions,
    kafka: KafkaSettings,
    state_dir: Path,
    *,
    to: Literal["earliest"] | datetime = "earliest",
    dry_run: bool = False,
) -> ResetPlan:
    """Reset the processor group of ``versions``; raises ``GroupActiveError`` while it runs."""
    names = TopicNames(versions.name, kafka.topic_prefix)
    group = names.processor_group
    config = client_config(kafka)
    check_reachable(kafka, names.events)
    try:
        require_inactive(config, group, timeout_s=10)
        partitions = topic_partitions(admin_client(config), [names.events], 10)
        committed = committed_offsets(config, group, partitions, 10)
        store = RocksDBStore(state_dir, group, names.events)
        paths = tuple(
            path for tp in partitions if (path := store.partition_path(tp.partition)).exists()
        )
        plan = ResetPlan(
            group=group,
            events_topic=names.events,
            to=to if isinstance(to, str) else to.isoformat(),
            committed={p: offset for (_, p), offset in committed.items()},
            store_paths=paths,
            changelog_topic=names.state_changelog,
            changelog_records=records_held(config, names.state_changelog),
        )
        if dry_run:
            return plan
        changes = reset_offsets(config, group, names.events, to, timeout_s=10)
        rewrite = ChangelogRewrite(kafka, versions.name)
        try:
            for tp in partitions:
                store.destroy_partition(tp.partition)
                # Tombstones, not deleted records: Kafka refuses DeleteRecords on a
                # compacted topic, and a restore that reads them ends with nothing.
                rewrite.agree(tp.partition, {})
        finally:
            rewrite.close()
    except KafkaException as exc:
        raise KafkaUnavailableError(f"cannot reset {group}: {exc}") from exc
    return ResetPlan(
        plan.group, plan.events_topic, plan.to, plan.committed, plan.store_paths,
        plan.changelog_topic, plan.changelog_records, tuple(changes),
    )  # fmt: skip
