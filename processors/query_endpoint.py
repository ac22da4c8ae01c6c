"""A saga processor's query endpoint: the service, its HTTP server and its announcement.

The processor calls :meth:`QueryEndpoint.assigned` once a partition is restored and
:meth:`QueryEndpoint.revoked` before it closes one, so the endpoint only ever answers
from a complete, committed store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from processors.endpoint_announcer import EndpointAnnouncer
from processors.query_server import QueryServer, query_app
from processors.query_service import PartitionGates, QueryService
from processors.store.base import PartitionStore
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions


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
    ) -> None:
        self.gates = PartitionGates()
        self.service = QueryService(versions, self.gates, query_timeout=settings.query_timeout)
        self.server = QueryServer(
            query_app(self.service, settings.token), settings.host, settings.port,
            token=settings.token,
        )  # fmt: skip
        address = settings.advertised_address or f"{settings.host}:{self.server.port}"
        self.url = f"http://{address}"
        self.announcer = EndpointAnnouncer(kafka, topic, instance_id, self.url)
        self.server.start()

    def assigned(self, stores: dict[int, PartitionStore], partition_count: int) -> None:
        """Serve these restored partitions (besides those served already)."""
        for partition, store in stores.items():
            self.gates.serve(partition, store, partition_count)
        self.announcer.announce(self.gates.served(), partition_count)

    def revoked(self, partitions: list[int]) -> None:
        """Stop serving these partitions; returns once no request reads them."""
        for partition in partitions:
            self.gates.withdraw(partition)
        self.announcer.announce(self.gates.served(), self.gates.partition_count)

    def close(self) -> None:
        """Withdraw the announcement and stop the server."""
        for partition in self.gates.served():
            self.gates.withdraw(partition)
        self.announcer.withdraw()
        self.server.stop()
        self.service.close()
