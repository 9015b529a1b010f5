"""httpcore's connections on asyncio's own transports: an ``httpcore`` network backend.

Why not httpcore's default (anyio streams) on asyncio: per request it enters an anyio
cancel scope for every read and write, looks socket attributes up through anyio's typed
attributes, and sends the request line and headers apart from the body (two ``send``
calls, two packets under ``TCP_NODELAY``). Over a WhatsApp blast (one request per
message, concurrency 50) this backend cut the default backend's instructions per message
from 3.70 to 2.19 million, callgrind (benchmarks/RESULTS.md, "WhatsApp: before / after
per stage"). Here a read waits on
one future with one ``call_later`` timer, and the writes of one request leave in one
``send`` as soon as the task reads the answer (or on the next loop turn, whichever comes
first). On trio, httpcore's own trio backend is used unchanged.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import sniffio

__all__ = ["NativeBackend"]

# Above this many unread bytes the socket is not read from until the reader catches up.
_READ_HIGH_WATER = 256 * 1024
# Writes up to this many bytes wait for the rest of the request (or the next loop turn).
_GATHER_LIMIT = 64 * 1024
_EXPIRED = object()  # what a timed-out wait's future holds
_Option = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one task waiting on the connection."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[object] | None = None
        self.drained: asyncio.Future[object] | None = None
        self.paused = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data
        if len(self.received) > _READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side too: an HTTP/1.1 answer ends the connection here

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self._wake()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_writer()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)


def _expire(future: asyncio.Future[object]) -> None:
    if not future.done():
        future.set_result(_EXPIRED)


async def _wait(future: asyncio.Future[object], timeout: float | None) -> bool:
    """Wait for ``future``; False if ``timeout`` seconds passed first."""
    if timeout is None:
        await future
        return True
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        return await future is not _EXPIRED
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: reads from the protocol's buffer, writes gathered per loop turn."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._pending_size = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._flush()
        protocol = self._protocol
        if not protocol.received and not protocol.eof and not protocol.lost:
            protocol.waiter = self._loop.create_future()
            try:
                if not await _wait(protocol.waiter, timeout):
                    raise httpcore.ReadTimeout("timed out reading the answer")
            finally:
                protocol.waiter = None
        if protocol.received:
            data = bytes(protocol.received[:max_bytes])
            del protocol.received[:max_bytes]
            if len(protocol.received) <= _READ_HIGH_WATER and not self._transport.is_closing():
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._protocol.lost or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(buffer)
        self._pending_size += len(buffer)
        # Small writes wait for company; a large body goes at once, and while the socket's
        # send buffer is full the write waits for it to drain (flow control, as anyio's).
        if self._pending_size > _GATHER_LIMIT or self._protocol.paused:
            self._flush()
            if self._protocol.paused:
                await self._drained(timeout)

    def _flush(self) -> None:
        if self._pending and not self._transport.is_closing():
            self._transport.write(b"".join(self._pending))
        self._pending.clear()
        self._pending_size = 0

    async def _drained(self, timeout: float | None) -> None:
        protocol = self._protocol
        protocol.drained = self._loop.create_future()
        try:
            if not await _wait(protocol.drained, timeout):
                raise httpcore.WriteTimeout("timed out writing the request")
        finally:
            protocol.drained = None
        if protocol.lost:
            raise httpcore.WriteError(str(protocol.error or "the connection was closed"))

    async def aclose(self) -> None:
        """Close the connection, its socket closed before this returns (as anyio's streams
        do): asyncio closes a socket only on the loop's next turn, and one left for that turn
        can outlive its event loop (a test's, a script's) as a ResourceWarning."""
        self._pending.clear()
        self._pending_size = 0
        transport = self._transport
        transport.close()
        try:
            await asyncio.sleep(0)
        finally:
            transport.abort()  # what a TLS goodbye still holds open; a no-op when closed
            await asyncio.sleep(0)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """TLS over this connection (to the gateway through an HTTP proxy's tunnel)."""
        self._flush()
        try:
            async with asyncio.timeout(timeout):
                tls = await self._loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        except BaseException:  # cancelled midway: nothing to wait for
            self._transport.abort()
            raise
        assert isinstance(tls, asyncio.Transport)
        self._protocol.transport = tls
        return AsyncioStream(tls, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            return self._is_readable()
        return None

    def _is_readable(self) -> bool:
        """An idle connection with something to read is one the server closed (or broke):
        what the protocol has seen, else what the socket holds that the loop has not yet
        read (the check httpcore makes on its own streams)."""
        protocol = self._protocol
        if protocol.received or protocol.eof or protocol.lost:
            return True
        sock = self._transport.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            return True
        poll = select.poll()
        poll.register(sock.fileno(), select.POLLIN)
        return bool(poll.poll(0))


class NativeBackend(httpcore.AsyncNetworkBackend):
    """asyncio's transports on asyncio; httpcore's trio backend on trio."""

    def __init__(self) -> None:
        self._trio: httpcore.AsyncNetworkBackend | None = None

    def _other(self) -> httpcore.AsyncNetworkBackend:
        if self._trio is None:
            self._trio = httpcore.TrioBackend()
        return self._trio

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_Option] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if sniffio.current_async_library() != "asyncio":
            return await self._other().connect_tcp(
                host, port, timeout, local_address, socket_options
            )
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=None if local_address is None else (local_address, 0),
                    # No happy_eyeballs_delay: on Python 3.11 its staggered race leaks the
                    # socket of a connect cancelled midway (tests/test_reliability.py's
                    # cancellation storms). A host's addresses are tried one by one.
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_Option] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await httpcore.AnyIOBackend().connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        if sniffio.current_async_library() != "asyncio":
            await self._other().sleep(seconds)
        else:
            await asyncio.sleep(seconds)
