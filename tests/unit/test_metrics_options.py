"""``--metrics-host``: which addresses count as loopback (anything else is warned about)."""

from __future__ import annotations

import pytest

from engine.app.cli.metrics_options import is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_addresses_are_not_warned_about(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.org"])
def test_any_other_address_or_a_host_name_is(host: str) -> None:
    assert not is_loopback(host)
