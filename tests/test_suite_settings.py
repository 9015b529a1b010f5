"""The suite's own settings and helpers that keep it green on a loaded CI machine."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, settings

from .gateway import refused_base_url


def test_no_property_has_a_wall_clock_deadline_or_a_too_slow_health_check() -> None:
    """A property that sets neither (tests/test_webhook_deadline.py's one-pass reading,
    say) would otherwise fail when a loaded machine makes one example take 200 ms."""
    active = settings.default
    assert active is not None
    assert active.deadline is None
    assert HealthCheck.too_slow in active.suppress_health_check


def test_a_refused_port_refuses_and_no_server_can_be_given_it() -> None:
    """``refused_base_url``'s port refuses connections, and a server binding it (as uvicorn
    binds: with SO_REUSEADDR) cannot take it while the session runs."""
    port = int(refused_base_url().rsplit(":", 1)[1])
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError, match="in use"):
            server.bind(("127.0.0.1", port))
