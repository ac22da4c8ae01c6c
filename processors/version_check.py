"""The start-up check that a worker runs every saga version its unfinished workflows are on.

A workflow stays on the version it started with, so a worker deployed without a version
that still has workflows in flight would park each of them (to the DLQ) when its next
event arrives. The check reads the saga's compacted status topic, which the processor
writes in the same transaction as its state, so it holds one record per workflow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from sagas.client.status_view import StatusView
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions
from sagas.errors import SagaError
from schemas.deployment_codecs import status_codec
from topics.naming import TopicNames


class MissingVersionsError(SagaError):
    """Workflows are in flight on saga versions this worker does not run."""

    def __init__(self, saga: str, missing: Mapping[int, int], deployed: tuple[int, ...]) -> None:
        described = ", ".join(
            f"{count} workflow(s) on version {version}"
            for version, count in sorted(missing.items())
        )
        known = ", ".join(str(v) for v in deployed)
        super().__init__(
            f"{described} still in flight, but this worker runs only version(s) {known}; "
            "deploy those versions beside the new one until their workflows end",
            saga=saga,
            non_retryable=True,
        )
        self.missing = dict(missing)
        """In-flight workflow count by missing version."""
        self.deployed = deployed
        """The versions this worker runs."""


def in_flight_by_version(kafka: KafkaSettings, saga: str, timeout: float = 60.0) -> dict[int, int]:
    """How many workflows of ``saga`` have not ended (parked ones included), by version."""
    topic = TopicNames(saga, kafka.topic_prefix).status
    view = StatusView(kafka.client_config(), topic, status_codec(kafka, topic))
    try:
        view.catch_up(timeout)
        records = view.snapshot()
    finally:
        view.close()
    return dict(Counter(r.version for r in records.values() if not r.status.is_final))


def missing_versions(
    versions: SagaVersions, kafka: KafkaSettings, timeout: float = 60.0
) -> dict[int, int]:
    """In-flight workflow counts of the versions ``versions`` lacks (empty when none)."""
    return lacking(versions, in_flight_by_version(kafka, versions.name, timeout))


def lacking(versions: SagaVersions, in_flight: Mapping[int, int]) -> dict[int, int]:
    """The entries of ``in_flight`` (count by version) for versions ``versions`` lacks."""
    return {v: n for v, n in sorted(in_flight.items()) if n > 0 and v not in versions.plans}


def check_versions(versions: SagaVersions, kafka: KafkaSettings, timeout: float = 60.0) -> None:
    """Raise :class:`MissingVersionsError` if workflows are in flight on a version not given."""
    missing = missing_versions(versions, kafka, timeout)
    if missing:
        raise MissingVersionsError(versions.name, missing, tuple(sorted(versions.plans)))
