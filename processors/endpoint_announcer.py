"""Announces where a processor answers queries, and for which partitions, on a compacted topic.

One record per processor instance on ``S.query-endpoints`` (keyed by instance id),
rewritten on every assignment and revocation and tombstoned on a clean stop, so a client
reads the small topic whole to route a workflow id to the processor that owns it.
"""

from __future__ import annotations

import json
import logging
import time

from confluent_kafka import KafkaException, Producer

from sagas.config import KafkaSettings

log = logging.getLogger(__name__)


class EndpointAnnouncer:
    """Writes this instance's endpoint record; failures are logged, never fatal."""

    def __init__(self, kafka: KafkaSettings, topic: str, instance_id: str, url: str) -> None:
        config = kafka.client_config()
        config.update({"enable.idempotence": "true", "acks": "all", "linger.ms": "0"})
        self._producer = Producer(config)
        self.topic = topic
        self._key = instance_id.encode()
        self._instance = instance_id
        self.url = url

    def announce(self, partitions: list[int], partition_count: int) -> None:
        """Say that this instance now serves exactly ``partitions`` of ``partition_count``."""
        record = {
            "instance": self._instance,
            "url": self.url,
            "partitions": sorted(partitions),
            "partition_count": partition_count,
            "time_ms": time.time_ns() // 1_000_000,
        }
        self._send(json.dumps(record).encode())

    def withdraw(self) -> None:
        """Remove this instance's record (a clean stop)."""
        self._send(None)

    def _send(self, value: bytes | None) -> None:
        try:
            self._producer.produce(self.topic, value, self._key)
            if self._producer.flush(10) > 0:
                log.warning("announcing the query endpoint on %s timed out", self.topic)
        except KafkaException as exc:
            log.warning("cannot announce the query endpoint on %s: %s", self.topic, exc)
