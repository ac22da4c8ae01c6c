import pytest

from sagas.dashboard.settings import DashboardSettings, is_loopback
from sagas.errors import ConfigurationError


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "::1", "localhost"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert is_loopback(host)
    assert DashboardSettings(host=host).token is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "dashboard.example.com"])
def test_beyond_loopback_a_token_is_required(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigurationError, match="without a token"):
        DashboardSettings(host=host)
    assert DashboardSettings(host=host, token="t0ken").host == host


def test_an_empty_token_or_a_bad_port_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="empty"):
        DashboardSettings(token="  ")
    with pytest.raises(ConfigurationError, match="port"):
        DashboardSettings(port=70000)
