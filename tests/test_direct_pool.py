"""Our pool of httpcore's connections (``_exchange._direct``), over real loopback sockets.

It replaces httpcore's pool for requests without a proxy, so these tests hold it to that
pool's answers and to its promises: idle connections reused, none past
``keepalive_expiry`` or closed by the server, at most its size open, a connection a
cancellation left midway closed and never reused, and respx still mocking the default
client.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import AsyncIterable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

import anyio
import httpcore
import httpx
import pytest
import respx

from messaging_async._connections import make_timeout
from messaging_async._exchange import HttpxExchange, Reply, SendFailed
from messaging_async._exchange import _httpx as exchange_module
from messaging_async._exchange._direct import DirectPool
from messaging_async._exchange._native import NativeBackend

from .gateway import serve_handler


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# path -> (status, extra headers, body); "/close" also drops the connection after answering.
ANSWERS: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {
    "/ok": (200, [], b'{"id": 1}'),
    "/empty": (200, [], b""),
    "/busy": (429, [("Retry-After", "7")], b"slow down"),
    "/down": (503, [], b"<html>down</html>"),
    "/close": (200, [("Connection", "close")], b"bye"),
    "/big": (200, [], b"x" * 300_000),
}


@contextlib.contextmanager
def server(delay: float = 0.0) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """A keep-alive server answering ``ANSWERS``; yields its URL and, per request, the
    path and the client's port (which connection it came on)."""
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                seen.append((self.path, self.client_address[1]))
            time.sleep(delay)
            status, headers, body = ANSWERS[self.path]
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    with serve_handler(Handler) as url:
        yield url, seen


def pooled(connections: int = 4, keepalive_expiry: float = 5.0) -> HttpxExchange:
    return HttpxExchange.pooled(connections, make_timeout(10.0), keepalive_expiry)


def direct(exchange: HttpxExchange) -> DirectPool:
    pool = exchange._shards[0].direct
    assert pool is not None
    return pool


async def test_answers_through_the_direct_pool_equal_httpcores_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same requests, through our pool and through httpcore's (the path taken while
    respx mocks it): the same replies."""

    async def replies() -> list[Reply]:
        exchange = pooled()
        try:
            return [
                await exchange.post(f"{url}{path}", b'{"a": 1}', "application/json")
                for path in [*ANSWERS, "/ok", "/ok"]
            ]
        finally:
            await exchange.aclose()

    with server() as (url, seen):
        ours = await replies()
        assert direct_was_used(seen)
        monkeypatch.setattr(exchange_module, "mocked", lambda: True)
        seen.clear()
        httpcores = await replies()
    assert ours == httpcores
    assert ours[2] == Reply(429, b"slow down", "7")
    assert ours[5].body == b"x" * 300_000


def direct_was_used(seen: list[tuple[str, int]]) -> bool:
    return len(seen) == len(ANSWERS) + 2


async def test_an_idle_connection_is_reused_but_not_past_keepalive_expiry() -> None:
    exchange = pooled(keepalive_expiry=0.3)
    try:
        with server() as (url, seen):
            for _ in range(3):
                await exchange.post(f"{url}/ok", b"{}", "application/json")
            await anyio.sleep(0.6)
            await exchange.post(f"{url}/ok", b"{}", "application/json")
            ports = [port for _, port in seen]
            assert len(set(ports[:3])) == 1, "idle connection not reused"
            assert ports[3] != ports[0], "a connection past keepalive_expiry was reused"
            assert len(direct(exchange).connections) == 1, "the expired one is still open"
    finally:
        await exchange.aclose()


async def test_with_keepalive_expiry_zero_no_connection_stays_open() -> None:
    exchange = pooled(keepalive_expiry=0)
    try:
        with server() as (url, seen):
            for _ in range(2):
                await exchange.post(f"{url}/ok", b"{}", "application/json")
                assert direct(exchange).connections == []
            assert seen[0][1] != seen[1][1]
    finally:
        await exchange.aclose()


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    exchange = pooled()
    try:
        with server() as (url, seen):
            reply = await exchange.post(f"{url}/close", b"{}", "application/json")
            assert reply == Reply(200, b"bye")
            assert direct(exchange).connections == []
            await exchange.post(f"{url}/ok", b"{}", "application/json")
            assert seen[0][1] != seen[1][1]
    finally:
        await exchange.aclose()


async def test_at_most_its_size_open_an_idle_one_to_another_origin_closed_for_room() -> None:
    exchange = pooled(connections=2)
    pool = direct(exchange)
    try:
        with server(delay=0.2) as (first, seen_first), server() as (second, seen_second):
            async with anyio.create_task_group() as tasks:
                for _ in range(2):
                    tasks.start_soon(exchange.post, f"{first}/ok", b"{}", "application/json")
            assert len({port for _, port in seen_first}) == 2
            assert len(pool.connections) == 2
            await exchange.post(f"{second}/ok", b"{}", "application/json")
            assert len(pool.connections) == 2
            await exchange.post(f"{first}/ok", b"{}", "application/json")
            assert len(pool.connections) == 2
            assert len(seen_second) == 1
    finally:
        await exchange.aclose()
    assert pool.connections == []


async def test_a_request_cancelled_midway_closes_its_connection_for_good() -> None:
    exchange = pooled()
    pool = direct(exchange)
    try:
        with server(delay=0.5) as (slow, seen):
            with anyio.move_on_after(0.2):
                await exchange.post(f"{slow}/ok", b"{}", "application/json")
            assert len(seen) == 1, "the request did not leave"
            assert pool.connections == [], "a connection left midway is still pooled"
            assert all(not idle for idle in pool._idle.values())
            reply = await exchange.post(f"{slow}/ok", b"{}", "application/json")
            assert reply.status == 200
            assert seen[0][1] != seen[1][1]
            assert exchange._shards[0].in_flight == 0
    finally:
        await exchange.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_respx_still_mocks_the_default_backend(anyio_backend: str) -> None:
    exchange = pooled()
    try:
        with respx.mock(assert_all_called=True) as mock:
            mock.post("https://gateway.test/x").respond(202, text="mocked")
            reply = await exchange.post("https://gateway.test/x", b"{}", "application/json")
        assert reply == Reply(202, b"mocked")
        assert direct(exchange).connections == []
    finally:
        await exchange.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_refused_connection_is_never_sent_and_leaves_nothing_open(
    anyio_backend: str,
) -> None:
    from .gateway import refused_base_url

    exchange = pooled()
    try:
        with pytest.raises(SendFailed) as failed:
            await exchange.post(f"{refused_base_url()}/x", b"{}", "application/json")
        assert failed.value.never_sent
        assert isinstance(failed.value.__cause__, httpx.ConnectError)
        assert direct(exchange).connections == []
        assert direct(exchange)._connecting == 0
    finally:
        await exchange.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    "url", ["https://gateway.example:8443/a/b.php?x=1&y=%20", "http://127.0.0.1:8080/isms"]
)
async def test_our_httpcore_request_has_the_fields_its_constructor_gives(
    anyio_backend: str, url: str
) -> None:
    """``_core_request`` sets httpcore's request fields itself (the constructor's checks
    cost ten times as much): the same fields, with the same values, as ``__init__``."""
    content = b'{"a": 1}'
    ours = exchange_module._core_request(url, content, "application/json", {"read": 1.5})
    target, fixed = exchange_module._core_target(url, "application/json")
    general = httpcore.Request(
        b"POST",
        target,
        headers=[*fixed, (b"Content-Length", b"8")],
        content=content,
        extensions={"timeout": {"read": 1.5}},
    )
    assert vars(ours).keys() == vars(general).keys()
    assert (ours.method, ours.url, ours.headers) == (general.method, general.url, general.headers)
    assert ours.extensions == general.extensions
    assert ours.url.origin == general.url.origin
    assert ours.url.target == general.url.target == httpx.URL(url).raw_path
    stream = cast(AsyncIterable[bytes], ours.stream)
    assert b"".join([part async for part in stream]) == content


async def test_a_free_connections_state_lock_is_taken_without_a_trip_through_the_loop() -> None:
    """httpcore's lock yields to the scheduler on every acquire, twice per request; ours
    does not while it is free, and still raises a pending cancellation."""
    exchange = pooled()
    try:
        with server() as (url, _):
            await exchange.post(f"{url}/ok", b"{}", "application/json")
            (connection,) = direct(exchange).connections
            lock = connection._state_lock
            trips = 0

            async def count() -> None:
                nonlocal trips
                while True:
                    trips += 1
                    await anyio.lowlevel.checkpoint()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(count)
                await anyio.lowlevel.checkpoint()
                before = trips
                for _ in range(10):
                    async with lock:
                        pass
                assert trips == before, "acquiring a free lock yielded to other tasks"
                tasks.cancel_scope.cancel()
            with anyio.CancelScope() as scope:
                scope.cancel()
                with pytest.raises(anyio.get_cancelled_exc_class()):
                    async with lock:
                        pass  # pragma: no cover
    finally:
        await exchange.aclose()


class _HeldConnect(httpcore.AsyncNetworkBackend):
    """The native backend, each connect held until ``release`` is set."""

    def __init__(self) -> None:
        self.connecting = anyio.Event()
        self.release = anyio.Event()

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connecting.set()
        await self.release.wait()
        return await NativeBackend().connect_tcp(*args, **kwargs)


async def test_a_connection_made_while_the_pool_closes_is_closed_after_its_request() -> None:
    backend = _HeldConnect()
    pool = DirectPool(4, ssl.create_default_context(), 5.0, None, backend)
    with server() as (url, seen):
        request = exchange_module._core_request(f"{url}/ok", b"{}", "application/json", {})
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(pool.send, request)
            await backend.connecting.wait()
            await pool.aclose()
            backend.release.set()
        assert len(seen) == 1
    assert pool.connections == [], "a connection outlived the pool's aclose()"
    assert all(not idle for idle in pool._idle.values())
