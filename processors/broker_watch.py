"""Whether a worker can reach its Kafka cluster, told once when that changes."""

from __future__ import annotations

import logging
import threading

from confluent_kafka.admin import AdminClient

from sagas.config import KafkaSettings
from sagas.errors import KafkaUnavailableError
from sagas.kafka_logs import admin_client_config
from topics.reachability import check_reachable

log = logging.getLogger(__name__)


class BrokerWatch:
    """Asks the cluster for metadata every ``interval_s`` seconds on a thread of its own.

    Losing the cluster is logged once as a WARNING and its return once at INFO, however
    long it stays away; :attr:`reachable` answers the health endpoints meanwhile.
    """

    def __init__(self, kafka: KafkaSettings, interval_s: float = 2.0) -> None:
        self.kafka = kafka
        self.interval_s = interval_s
        self._admin = AdminClient(admin_client_config(kafka.client_config()))
        self._reachable = threading.Event()
        self._reachable.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="broker-watch", daemon=True)

    @property
    def reachable(self) -> bool:
        """Whether the last metadata request was answered."""
        return self._reachable.is_set()

    def start(self) -> BrokerWatch:
        """Start watching; returns at once."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching and wait for the thread."""
        self._stop.set()
        self._thread.join(self.kafka.connect_timeout + self.interval_s)

    def check(self) -> bool:
        """Ask once, log a change, and return whether the cluster answered."""
        try:
            check_reachable(self.kafka, self._admin)
        except KafkaUnavailableError:
            if self._reachable.is_set() and not self._stop.is_set():
                self._reachable.clear()
                log.warning("lost the broker at %s; retrying", self.kafka.bootstrap_servers)
            return False
        if not self._reachable.is_set():
            self._reachable.set()
            log.info("the broker at %s is back", self.kafka.bootstrap_servers)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()
