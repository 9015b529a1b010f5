"""http_backend="aiohttp": same guarantees as httpx's own transport, asyncio only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest

from messaging_async import IsmsClient, OutcomeUnknownError, RetryPolicy, Sms, ValidationError
from messaging_async.testing import FakeGateway, serve

from .gateway import refused_base_url


class Hangup:
    """A loopback server that reads each request, then closes the connection unanswered:
    the request arrived, so the client must not treat it as never sent."""

    def __init__(self) -> None:
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def hangups() -> Iterator[tuple[Hangup, Hangup]]:
    first, second = Hangup(), Hangup()
    yield first, second
    first.close()
    second.close()


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_a_disconnect_after_the_request_is_unknown_and_never_resent(
    backend: str, hangups: tuple[Hangup, Hangup]
) -> None:
    first, second = hangups
    fake = FakeGateway()
    isms = fake.isms_client(
        sms_base_urls=[first.url, second.url], http_backend=backend, timeout=2.0
    )
    async with isms:
        with pytest.raises(OutcomeUnknownError):
            await isms.send_sms("60123456789", "Your OTP is 123456")
        report = await isms.send_sms_bulk(Sms(to=f"6012{i:07d}", text="x") for i in range(120))
    assert {o.status.value for o in report.outcomes} == {"unknown"}
    assert first.requests == 4  # one per request: the OTP and three chunks
    assert second.requests == 0, "a request that had arrived was sent again elsewhere"


async def test_failover_and_bulk_over_sockets_with_aiohttp() -> None:
    fake = FakeGateway()
    async with serve(fake) as url:
        hosts = [refused_base_url(), url]
        isms = fake.isms_client(sms_base_urls=hosts, http_backend="aiohttp", max_concurrency=4)
        async with isms:
            report = await isms.send_sms_bulk(
                Sms(to=f"6012{i:07d}", text=f"hi {i}") for i in range(500)
            )
        async with fake.smscommy_client(base_url=url, http_backend="aiohttp") as smsmy:
            outcome = await smsmy.send_sms("60123456789", "hello")
    assert report.all_accepted
    assert outcome.ok
    assert len(fake.sent) == 501


def test_aiohttp_backend_is_asyncio_only() -> None:
    async def main() -> None:
        async with FakeGateway().isms_client(
            sms_base_urls=["http://127.0.0.1:9"], http_backend="aiohttp"
        ) as isms:
            await isms.send_sms("60123456789", "hi")

    with pytest.raises(ValidationError, match="asyncio only"):
        anyio.run(main, backend="trio")


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValidationError, match="http_backend"):
        FakeGateway().isms_client(http_backend="curl")
    assert RetryPolicy.no_wait().wait is False


def test_an_httpx_transport_cannot_be_combined_with_the_aiohttp_backend() -> None:
    """``transport=`` is an httpx transport: with aiohttp it would be silently ignored."""
    with pytest.raises(ValidationError, match="cannot be combined"):
        IsmsClient(
            username="u",
            password="p",
            transport=httpx.MockTransport(lambda request: httpx.Response(200)),
            http_backend="aiohttp",
        )
