"""A minimal HTTP proxy on 127.0.0.1 for the proxy tests: forward (absolute-form) requests
and CONNECT tunnels, to loopback targets only, each on a connection of its own; and an
HTTPS front for the sandbox, so the TLS settings and CONNECT have a server to meet.

It runs its own asyncio loop in a thread, so tests on trio can use it too. Every answer it
relays says ``Connection: close``, so no client ever reuses a connection the proxy is about
to drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import urlsplit

_LOOPBACK = {"127.0.0.1", "localhost"}

# Every stream each serving loop opened or accepted, so that it can end them all before it
# closes: a connection left to the garbage collector after its loop closed complains with a
# ResourceWarning in whichever later test happens to collect it.
_streams: dict[asyncio.AbstractEventLoop, set[asyncio.StreamWriter]] = {}


def _track(writer: asyncio.StreamWriter) -> asyncio.StreamWriter:
    _streams.setdefault(asyncio.get_running_loop(), set()).add(writer)
    return writer


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection``, tracked so that the serving loop ends it before closing."""
    reader, writer = await asyncio.open_connection(host, port)
    return reader, _track(writer)


def _close(writer: asyncio.StreamWriter) -> None:
    """Close once: a second ``close()`` on a TLS transport drops its link to the TLS protocol,
    and then ``abort()`` can no longer end a shutdown that waits for the peer."""
    if not writer.is_closing():
        writer.close()


class LoopbackProxy:
    def __init__(self) -> None:
        self.requests: list[str] = []  # "METHOD target" as the proxy received them
        self.url = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _version = request_line.split(" ", 2)
            self.requests.append(f"{method} {target}")
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(method, target, header_lines, reader, writer)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            _close(writer)

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        if host not in _LOOPBACK:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        up_reader, up_writer = await _open(host, int(port))
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            _close(up_writer)

    async def _forward(
        self,
        method: str,
        target: str,
        header_lines: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        parts = urlsplit(target)
        if parts.hostname not in _LOOPBACK or parts.port is None:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        headers = [
            line
            for line in header_lines
            if line and not line.lower().startswith(("proxy-", "connection:"))
        ]
        lengths = [h.split(":", 1)[1] for h in headers if h[:15].lower() == "content-length:"]
        length = int(lengths[0]) if lengths else 0
        body = await reader.readexactly(length)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        up_reader, up_writer = await _open(parts.hostname, parts.port)
        upstream = f"{method} {path} HTTP/1.1\r\n" + "\r\n".join([*headers, "Connection: close"])
        try:
            up_writer.write(upstream.encode("latin-1") + b"\r\n\r\n" + body)
            answer = await up_reader.read()
        finally:
            _close(up_writer)
        answer_head, _, answer_body = answer.partition(b"\r\n\r\n")
        status_line, *answer_headers = answer_head.split(b"\r\n")
        kept = [h for h in answer_headers if not h.lower().startswith(b"connection:")]
        writer.write(b"\r\n".join([status_line, *kept, b"Connection: close"]) + b"\r\n\r\n")
        writer.write(answer_body)
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then close ``writer`` (also when cancelled: the tunnel's other end is
    closed by nobody else)."""
    try:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    finally:
        _close(writer)


async def _end_connections() -> None:
    """End every connection still open (kept alive, tunnels, TLS shutdowns) while the loop
    runs: closed with the loop, they would complain when collected, in some later test.

    First the handler tasks are cancelled and awaited (their ``finally`` closes what they
    opened). Then whatever is not closed yet is aborted, not closed: a TLS ``close()`` waits
    for the peer's close_notify (up to 30 s), and a tunnel whose task was cancelled has
    closed nothing. Last, the loop runs until each transport has called
    ``connection_lost``, which is what closes its socket."""
    await asyncio.sleep(0)  # handlers accepted but not started yet register their streams
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    writers = _streams.pop(asyncio.get_running_loop(), set())
    for writer in writers:
        writer.transport.abort()
    closed = asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)
    with contextlib.suppress(TimeoutError):  # errors of aborted connections are not ours
        await asyncio.wait_for(closed, 10)


@contextlib.contextmanager
def _serving_in_a_thread(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    context: ssl.SSLContext | None = None,
) -> Iterator[int]:
    """Serve ``handle`` on an ephemeral loopback port from an asyncio loop in a thread, for
    the ``with`` block (then every connection still open is ended); yields the port."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    port: list[int] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _track(writer)
        try:
            await handle(reader, writer)
        finally:
            _close(writer)

    async def serve() -> None:
        server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=context)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop.wait()
        await _end_connections()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        _streams.pop(loop, None)


@contextlib.contextmanager
def running_proxy() -> Iterator[LoopbackProxy]:
    """A ``LoopbackProxy`` served on an ephemeral loopback port for the ``with`` block."""
    proxy = LoopbackProxy()
    with _serving_in_a_thread(proxy._handle) as port:
        proxy.url = f"http://127.0.0.1:{port}"
        yield proxy


@contextlib.contextmanager
def running_tls_front(target: str, context: ssl.SSLContext) -> Iterator[str]:
    """An HTTPS front for the plain-http ``target`` (the sandbox): TLS with ``context``'s
    certificate on an ephemeral loopback port, bytes relayed as they are; yields its
    ``https://127.0.0.1:port`` base URL."""
    parts = urlsplit(target)
    host, target_port = parts.hostname, parts.port
    assert host in _LOOPBACK
    assert host is not None
    assert target_port is not None

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            up_reader, up_writer = await _open(host, target_port)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                _close(up_writer)

    with _serving_in_a_thread(relay, context) as port:
        yield f"https://127.0.0.1:{port}"
