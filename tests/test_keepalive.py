"""Stale keep-alive connections, over real sockets on both backends.

A gateway closes idle keep-alive connections on its own clock (Apache: 5 s). A request
sent on a connection at the moment the server closes it crosses the server's FIN on the
wire: the server never reads it, and the client, having sent a POST, cannot know that —
the send ends ``unknown``. The client must drop idle connections clearly before common
server timeouts, so sporadic sends (OTPs) never race one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from messaging_async import (
    IsmsClient,
    OutcomeUnknownError,
    RetryPolicy,
    SmsComMyClient,
    ValidationError,
)
from messaging_async._exchange import DEFAULT_KEEPALIVE_EXPIRY

from .gateway import PASSWORD, USERNAME

# The server's keep-alive timeout and the one-way delay it models between it and the client.
IDLE_TIMEOUT = 3.0
LATENCY = 0.5
# Gaps between sends: reuse well inside the timeout, then inside the race window
# (IDLE_TIMEOUT ± LATENCY), then after the server has closed the connection.
GAPS = (0.3, 2.75, 3.1, 4.0)
OLD_EXPIRY = 5.0  # httpx's default (aiohttp's is 15 s): what the clients used before


class ClosingIdleServer:
    """A minimal iSMS JSON endpoint over HTTP/1.1 keep-alive on 127.0.0.1 that closes idle
    connections after ``IDLE_TIMEOUT``, with ``LATENCY`` each way between it and the client.

    With latency, the server's close reaches the client ``LATENCY`` after it happened, and a
    request reaches the server ``LATENCY`` after it was sent. So a request sent within
    ``LATENCY`` of the timeout crosses the close: the server closes without reading it (as
    Apache does), and the client sees the connection drop after sending. Both halves are
    modelled from the server's clock: a request found after ``IDLE_TIMEOUT - LATENCY`` of
    idleness is dropped unread, and the socket itself is closed at ``IDLE_TIMEOUT + LATENCY``.
    """

    def __init__(self) -> None:
        self.processed: list[str] = []
        self.dropped = 0
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        try:
            while True:
                left = IDLE_TIMEOUT + LATENCY - (loop.time() - idle_since)
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(left, 0.0))
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                if loop.time() - idle_since > IDLE_TIMEOUT - LATENCY:
                    self.dropped += 1  # the request crossed our close: never read, never done
                    return
                body = await reader.readexactly(_content_length(head))
                writer.write(self._answer(body))
                await writer.drain()
                idle_since = loop.time()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, body: bytes) -> bytes:
        (message,) = json.loads(body)["messages"]
        self.processed.append(message["dstno"])
        result = {
            "dstno": message["dstno"],
            "code": 2000,
            "sms_id": str(1143000000 + len(self.processed)),
        }
        payload = json.dumps({"total_failed": 0, "results": [result]}).encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload


def _content_length(head: bytes) -> int:
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value)
    return 0


@contextlib.asynccontextmanager
async def closing_idle_server() -> AsyncIterator[tuple[ClosingIdleServer, str]]:
    app = ClosingIdleServer()
    server = await asyncio.start_server(app.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield app, f"http://127.0.0.1:{port}"


def otp_client(url: str, backend: str, **settings: Any) -> IsmsClient:
    return IsmsClient(
        username=USERNAME,
        password=PASSWORD,
        sms_base_urls=[url],
        retry=RetryPolicy.no_wait(),
        http_backend=backend,  # type: ignore[arg-type]
        **settings,
    )


async def send_otps(client: IsmsClient, number: str) -> list[str]:
    """One OTP after each gap; the status of each ("accepted" or "unknown")."""
    statuses = []
    async with client:
        for gap in (0.0, *GAPS):
            await asyncio.sleep(gap)
            try:
                outcome = await client.send_sms(number, "Your OTP is 918273")
                statuses.append(outcome.status.value)
            except OutcomeUnknownError:
                statuses.append("unknown")
    return statuses


async def test_sporadic_otps_never_race_a_server_closing_idle_connections() -> None:
    """With the default setting, no OTP ends ``unknown``, on either backend; with the old
    expiry (httpx's 5 s), the same rhythm does produce ``unknown``s, which shows the server
    really races a client that keeps idle connections too long."""
    assert DEFAULT_KEEPALIVE_EXPIRY <= IDLE_TIMEOUT - LATENCY - 0.5  # margin for a slow machine
    async with closing_idle_server() as (server, url):
        runs = {
            ("httpx", "default"): otp_client(url, "httpx"),
            ("aiohttp", "default"): otp_client(url, "aiohttp"),
            ("httpx", "old"): otp_client(url, "httpx", keepalive_expiry=OLD_EXPIRY),
            ("aiohttp", "old"): otp_client(url, "aiohttp", keepalive_expiry=OLD_EXPIRY),
        }
        numbers = {key: f"6012000000{i}" for i, key in enumerate(runs)}
        results = await asyncio.gather(
            *(send_otps(client, numbers[key]) for key, client in runs.items())
        )
    statuses = dict(zip(runs, results, strict=True))
    for backend in ("httpx", "aiohttp"):
        assert statuses[backend, "default"] == ["accepted"] * (len(GAPS) + 1), backend
        assert server.processed.count(numbers[backend, "default"]) == len(GAPS) + 1
        # The control: keeping idle connections as long as before loses sends to the race,
        # and the server processed none of them (``unknown`` is honest, never a resend).
        old = statuses[backend, "old"]
        assert "unknown" in old, (backend, old)
        assert server.processed.count(numbers[backend, "old"]) == old.count("accepted")
    assert server.dropped >= 2


async def test_keepalive_expiry_zero_opens_a_connection_per_request() -> None:
    async with closing_idle_server() as (server, url):
        for backend in ("httpx", "aiohttp"):
            before = server.connections
            async with otp_client(url, backend, keepalive_expiry=0) as client:
                for _ in range(3):
                    await client.send_sms("60120000001", "hi")
            assert server.connections - before == 3, backend


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "2", True, None, 3601])
@pytest.mark.parametrize(
    ("client_class", "extra"),
    [(IsmsClient, {}), (SmsComMyClient, {"base_url": "http://127.0.0.1:9/websmsapi"})],
)
def test_keepalive_expiry_is_validated(
    value: object, client_class: type[Any], extra: dict[str, str]
) -> None:
    with pytest.raises(ValidationError, match="keepalive_expiry") as caught:
        client_class(username=USERNAME, password=PASSWORD, keepalive_expiry=value, **extra)
    assert caught.value.field == "keepalive_expiry"
