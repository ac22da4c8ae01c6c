"""A saga processor's query endpoint: who answers, on which socket, and its announcement.

The processor calls :meth:`QueryEndpoint.assigned` once a partition is restored and
:meth:`QueryEndpoint.revoked` before it closes one, so the endpoint only ever answers
from a complete, committed store. Over RocksDB stores a child process answers
(:mod:`processors.query_process`), off the processor's interpreter lock; over in-memory
stores, or for a saga that another process cannot import (declared inside a function),
a thread of the processor does.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import timedelta

from processors.endpoint_announcer import EndpointAnnouncer
from processors.metrics import Metrics
from processors.query_process import QueryJob, QueryProcess
from processors.query_server import QueryServer, bind_socket, query_app
from processors.query_service import PartitionGates, QueryService
from processors.store.base import PartitionStore
from processors.store.rocksdb import RocksDBPartitionStore
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, declaring_modules

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuerySettings:
    """Where and how a saga processor answers visibility requests."""

    host: str = "127.0.0.1"
    """The address the HTTP endpoint binds (beyond 127.0.0.1, a token is required)."""
    port: int = 0
    """Its port (0: any free port, announced on the endpoints topic)."""
    advertised_address: str | None = None
    """``host:port`` clients reach it at, when not the bound one (containers, NAT)."""
    token: str | None = None
    """The bearer token requests must carry."""
    query_timeout: timedelta = timedelta(seconds=2)
    """How long a query function may run before its answer is a timeout."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"query port must be in [0, 65535], got {self.port}")


class QueryEndpoint:
    """Serves one processor's partitions over HTTP and announces them."""

    def __init__(
        self,
        versions: SagaVersions,
        kafka: KafkaSettings,
        settings: QuerySettings,
        *,
        topic: str,
        instance_id: str,
        separate_process: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        """``separate_process``: whether the stores can be read from another process
        (RocksDB with its write-ahead log, as the processor opens it)."""
        self.gates = PartitionGates()
        """The partitions served, over the processor's own stores."""
        self._socket = bind_socket(settings.host, settings.port, token=settings.token)
        address = settings.advertised_address or f"{settings.host}:{self._socket.getsockname()[1]}"
        self.url = f"http://{address}"
        self.process: QueryProcess | None = None
        self._service: QueryService | None = None
        self._server: QueryServer | None = None
        try:
            modules = declaring_modules(versions) if separate_process else None
            if modules is not None:
                job = QueryJob(
                    versions.name, modules, tuple(versions.plans), settings.token,
                    settings.query_timeout.total_seconds(), tuple(sys.path),
                )  # fmt: skip
                self.process = QueryProcess(job, self._socket, metrics=metrics)
            else:
                if separate_process:
                    log.info(
                        "saga %r is not declared at a module's top level: its processor "
                        "answers queries in a thread of its own process",
                        versions.name,
                    )
                self._service = QueryService(
                    versions, self.gates, query_timeout=settings.query_timeout
                )
                self._server = QueryServer(query_app(self._service, settings.token), self._socket)
                self._server.start()
        except BaseException:
            self._socket.close()
            raise
        self.announcer = EndpointAnnouncer(kafka, topic, instance_id, self.url)

    def assigned(self, stores: dict[int, PartitionStore], partition_count: int) -> None:
        """Serve these restored partitions (besides those served already)."""
        for partition, store in stores.items():
            self.gates.serve(partition, store, partition_count)
            if self.process is not None:
                assert isinstance(store, RocksDBPartitionStore)
                self.process.serve(partition, store.path, partition_count)
        self.announcer.announce(self.gates.served(), partition_count)

    def revoked(self, partitions: list[int]) -> None:
        """Stop serving these partitions; returns once no request reads them."""
        self._withdraw(partitions)
        self.announcer.announce(self.gates.served(), self.gates.partition_count)

    def close(self) -> None:
        """Withdraw the announcement and stop answering."""
        self._withdraw(self.gates.served())
        self.announcer.withdraw()
        if self.process is not None:
            self.process.close()
        if self._server is not None:
            self._server.stop()
        if self._service is not None:
            self._service.close()
        self._socket.close()

    def _withdraw(self, partitions: list[int]) -> None:
        # The query process first: it must not answer for a partition no longer held.
        if self.process is not None:
            self.process.withdraw(partitions)
        for partition in partitions:
            self.gates.withdraw(partition)
