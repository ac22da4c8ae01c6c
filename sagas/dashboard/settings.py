"""How the dashboard is served: where it listens, who may use it, where its metrics are."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sagas.errors import ConfigurationError


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the dashboard on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """Where the dashboard listens and what it needs from a visitor.

    ``token``, when set, is asked of every request; it must be set whenever ``host`` is
    not a loopback address, because the pages can cancel, terminate and redrive.
    ``prometheus_url`` feeds the service-level panel; without it the panel says so.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    prometheus_url: str | None = None
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():
            raise ConfigurationError("the dashboard token must not be empty")
        if self.token is None and not is_loopback(self.host):
            raise ConfigurationError(
                f"refusing to serve the dashboard on {self.host} without a token: "
                "set --token or SAGAS_DASHBOARD_TOKEN, or bind 127.0.0.1"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port {self.port} is out of range")
        if self.page_size < 1:
            raise ConfigurationError("the page size must be at least 1")
