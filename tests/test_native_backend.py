"""Our httpx pools' network backend (``_exchange._native``), over real loopback sockets.

On asyncio the connections run on asyncio's own transports; on trio on httpcore's trio
backend. The transport, reliability, keep-alive and proxy suites run through it too: these
tests pin what is its own — which streams the pools use, one write per request, and how
its reads, writes and connects fail (timeouts, closes, refusals) in httpcore's terms, which
``HttpxExchange`` turns into "never sent" or "may have left".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpcore
import httpx
import pytest

from messaging_async import IsmsClient, RetryPolicy
from messaging_async._exchange import HttpxExchange, SendFailed
from messaging_async._exchange._native import AsyncioStream, NativeBackend

from .gateway import (
    PASSWORD,
    USERNAME,
    TestGateway,
    refused_base_url,
    serve_handler,
    serve_on_loopback,
)


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _client(url: str, **settings: Any) -> IsmsClient:
    return IsmsClient(
        username=USERNAME,
        password=PASSWORD,
        sms_base_urls=[url],
        retry=RetryPolicy.no_wait(),
        **settings,
    )


def _streams(client: IsmsClient) -> list[object]:
    shards = client._transport._exchange._shards  # type: ignore[attr-defined]
    return [
        connection._network_stream for shard in shards for connection in shard.direct.connections
    ]


async def test_pools_use_asyncios_transports_on_asyncio_and_httpcores_trio_backend_on_trio(
    anyio_backend: str,
) -> None:
    with serve_on_loopback(TestGateway()) as url:
        async with _client(url) as client:
            outcome = await client.send_sms("60123456789", "Hi")
            assert outcome.status.value == "accepted"
            streams = _streams(client)
    assert streams, "no pooled connection"
    kinds = {type(stream).__name__ for stream in streams}
    assert kinds == ({"AsyncioStream"} if anyio_backend == "asyncio" else {"TrioStream"})


@contextlib.asynccontextmanager
async def silent_server(*, read: bool) -> AsyncIterator[tuple[str, int, list[bytes]]]:
    """A 127.0.0.1 server that never answers; with ``read``, it records every chunk it
    receives (each ``recv`` as it came), else it reads nothing at all."""
    chunks: list[bytes] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if read:
            while chunk := await reader.read(65536):
                chunks.append(chunk)
        await done.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        try:
            yield "127.0.0.1", server.sockets[0].getsockname()[1], chunks
        finally:
            done.set()
            await asyncio.sleep(0.05)  # the handlers close their ends


class _Recording(asyncio.Transport):
    """A transport that only records what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def resume_reading(self) -> None:
        return None


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_requests_head_and_body_leave_in_one_write(anyio_backend: str) -> None:
    """httpcore writes the head and the body apart; they leave together once the task reads
    the answer (two packets under TCP_NODELAY would be two sends and two wake-ups)."""
    from messaging_async._exchange._native import _Protocol

    protocol = _Protocol()
    transport = _Recording()
    protocol.connection_made(transport)
    stream = AsyncioStream(transport, protocol)
    await stream.write(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n")
    await stream.write(b"{}")
    assert transport.writes == []
    protocol.data_received(b"HTTP/1.1 200 OK\r\n")
    assert await stream.read(65536) == b"HTTP/1.1 200 OK\r\n"
    assert transport.writes == [b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_writes_left_unread_still_leave_on_the_next_loop_turn(anyio_backend: str) -> None:
    async with silent_server(read=True) as (host, port, chunks):
        stream = await NativeBackend().connect_tcp(host, port, timeout=5)
        await stream.write(b"first ")
        await stream.write(b"second")
        for _ in range(200):
            if b"".join(chunks) == b"first second":
                break
            await asyncio.sleep(0.01)
        assert b"".join(chunks) == b"first second"
        await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_read_with_no_answer_times_out_as_httpcores_read_timeout(
    anyio_backend: str,
) -> None:
    async with silent_server(read=True) as (host, port, _):
        stream = await NativeBackend().connect_tcp(host, port, timeout=5)
        await stream.write(b"POST / HTTP/1.1\r\n\r\n")
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(65536, timeout=0.2)
        await stream.aclose()


async def _write_much(stream: httpcore.AsyncNetworkStream, mebibytes: int) -> None:
    for _ in range(mebibytes):
        await stream.write(b"x" * (1 << 20), timeout=0.3)


async def _read_to_the_end(stream: httpcore.AsyncNetworkStream) -> None:
    while await stream.read(65536, timeout=5):
        pass


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_write_the_server_never_reads_times_out_as_httpcores_write_timeout(
    anyio_backend: str,
) -> None:
    """The socket's buffers fill; the write waits for them to drain, up to its timeout."""
    async with silent_server(read=False) as (host, port, _):
        stream = await NativeBackend().connect_tcp(host, port, timeout=5)
        try:
            with pytest.raises(httpcore.WriteTimeout):
                await _write_much(stream, 64)  # 64 MiB: more than any loopback buffer holds
        finally:
            await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_closed_or_reset_connection_reads_as_the_end_or_an_error(
    anyio_backend: str,
) -> None:
    ends: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if not ends:  # the first connection: an orderly close (FIN)
            ends.append("closed")
            writer.close()
        else:  # the second: a reset (RST), once the request is in
            await reader.read(1)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        closed = await NativeBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert await closed.read(65536, timeout=5) == b""
        assert closed.get_extra_info("is_readable")  # an idle connection the server closed
        with pytest.raises(httpcore.WriteError):
            await closed.write(b"POST / HTTP/1.1\r\n\r\n")
        reset = await NativeBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await reset.write(b"POST / HTTP/1.1\r\n\r\n")
        with pytest.raises(httpcore.ReadError):
            await _read_to_the_end(reset)
        await closed.aclose()
        await reset.aclose()
        await asyncio.sleep(0.01)  # the transports' own close callbacks run


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_idle_open_connection_is_not_readable(anyio_backend: str) -> None:
    async with silent_server(read=True) as (host, port, _):
        stream = await NativeBackend().connect_tcp(host, port, timeout=5)
        assert stream.get_extra_info("is_readable") is False
        assert stream.get_extra_info("server_addr") == (host, port)
        assert stream.get_extra_info("ssl_object") is None
        await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_refused_connect_is_httpcores_connect_error(anyio_backend: str) -> None:
    port = int(refused_base_url().rsplit(":", 1)[1])
    with pytest.raises(httpcore.ConnectError):
        await NativeBackend().connect_tcp("127.0.0.1", port, timeout=5)


@contextlib.contextmanager
def answering(status: int, headers: dict[str, str], delay: float = 0.0) -> Iterator[str]:
    """A threaded HTTP/1.1 server on 127.0.0.1 giving every POST the same answer."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(delay)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": "2"}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            return None

    with serve_handler(Handler) as url:
        yield url


def _pooled(read: float = 5.0) -> HttpxExchange:
    return HttpxExchange.pooled(4, httpx.Timeout(5.0, read=read))


async def test_our_pools_give_the_status_body_and_retry_after(anyio_backend: str) -> None:
    with answering(429, {"Retry-After": "7"}) as url:
        exchange = _pooled()
        try:
            reply = await exchange.post(f"{url}/x", b"{}", "application/json")
        finally:
            await exchange.aclose()
    assert (reply.status, reply.body, reply.retry_after) == (429, b"{}", "7")


async def test_our_pools_fail_with_httpxs_errors_and_say_whether_it_left(
    anyio_backend: str,
) -> None:
    """A refused connect never left; a read timeout may have. The cause is httpx's error of
    the same name as httpcore's, whichever path the request took."""
    exchange = _pooled(read=0.3)
    try:
        with pytest.raises(SendFailed) as refused:
            await exchange.post(f"{refused_base_url()}/x", b"{}", "application/json")
        with answering(200, {}, delay=1.0) as url, pytest.raises(SendFailed) as slow:
            await exchange.post(f"{url}/x", b"{}", "application/json")
    finally:
        await exchange.aclose()
    assert refused.value.never_sent
    assert isinstance(refused.value.__cause__, httpx.ConnectError)
    assert isinstance(refused.value.__cause__.__cause__, httpcore.ConnectError)
    assert not slow.value.never_sent
    assert isinstance(slow.value.__cause__, httpx.ReadTimeout)
    assert str(slow.value).startswith("ReadTimeout")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_closed_connections_socket_is_closed_when_aclose_returns(
    anyio_backend: str,
) -> None:
    """asyncio closes a socket on the loop's next turn; one left for that turn can outlive
    its event loop (a ResourceWarning in the user's tests)."""
    async with silent_server(read=True) as (host, port, _):
        stream = await NativeBackend().connect_tcp(host, port, timeout=5)
        sock = stream.get_extra_info("socket")
        await stream.aclose()
        assert sock.fileno() == -1
