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
            writer.close()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        if host not in _LOOPBACK:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

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
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        upstream = f"{method} {path} HTTP/1.1\r\n" + "\r\n".join([*headers, "Connection: close"])
        up_writer.write(upstream.encode("latin-1") + b"\r\n\r\n" + body)
        answer = await up_reader.read()
        up_writer.close()
        answer_head, _, answer_body = answer.partition(b"\r\n\r\n")
        status_line, *answer_headers = answer_head.split(b"\r\n")
        kept = [h for h in answer_headers if not h.lower().startswith(b"connection:")]
        writer.write(b"\r\n".join([status_line, *kept, b"Connection: close"]) + b"\r\n\r\n")
        writer.write(answer_body)
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _end_connections() -> None:
    """Cancel the connections still open (kept alive, or tunnels) and let them close while
    the loop runs: closed with the loop, they would complain when collected."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


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

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
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
    assert parts.hostname in _LOOPBACK
    assert parts.port is not None

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except OSError:
            writer.close()

    with _serving_in_a_thread(relay, context) as port:
        yield f"https://127.0.0.1:{port}"
