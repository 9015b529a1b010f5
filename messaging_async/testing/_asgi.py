"""Serving the sandbox as an ASGI app over a real socket, faults included."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

from .._detached import spawn_detached
from ._control import control_answer, forbidden, is_control_path, is_loopback
from ._records import Fault, SimulatedAnswer

if TYPE_CHECKING:
    from .gateway import FakeGateway

__all__ = ["serve", "serve_request"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


async def serve_request(
    fake: FakeGateway, scope: MutableMapping[str, Any], receive: Any, send: Any
) -> None:
    """The sandbox as an ASGI app: the control API for loopback clients, else the gateways."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if is_control_path(scope["path"]):
        await _serve_control(fake, scope, body, send)
    else:
        await _serve_gateway(fake, scope, body, receive, send)


async def _serve_control(
    fake: FakeGateway, scope: MutableMapping[str, Any], body: bytes, send: Any
) -> None:
    client = scope.get("client")
    if client is None or not is_loopback(client[0]):
        answer = forbidden()
    else:
        query = scope.get("query_string", b"").decode("latin-1")
        answer = await control_answer(fake, scope["method"], scope["path"], query, body)
    await _answer(send, answer, answer.body.encode())


async def _serve_gateway(
    fake: FakeGateway, scope: MutableMapping[str, Any], body: bytes, receive: Any, send: Any
) -> None:
    """One gateway request, with the fault (if any) that strikes it."""
    connection = _Connection.of(send)
    if connection is not None and connection.closing:
        await connection.drop(receive)  # raced an idle close: never processed, as for real
        return
    path: str = scope["path"]
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1").split(":")[0]
    rule = fake.take_fault(path, host)
    if rule is not None and not rule.fault.processes:
        # Over a socket, REFUSE cannot refuse: it answers like a proxy with no upstream.
        answer = fake.fault_answer(rule if rule.fault is not Fault.REFUSE else _as_502(rule), path)
    else:
        query = scope.get("query_string", b"").decode("latin-1")
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        answer = fake.handle(scope["method"], path, query, body, content_type)
    if rule is not None and rule.fault is Fault.CLOSE and connection is not None:
        await connection.drop(receive)
        return
    idle = fake.idle_timeout_for(path, host)
    if idle is not None and connection is not None:
        connection.close_when_idle(idle)
    content = answer.body.encode()
    if rule is not None and rule.fault is Fault.TRUNCATED:
        content = content[: len(content) // 2]
    if rule is not None and rule.fault in (Fault.SLOW, Fault.HANG):
        await anyio.sleep(rule.delay if rule.fault is Fault.SLOW else 300)
    # RESET (and CLOSE where the server's connection cannot be reached): promise one byte
    # more than is sent, then drop the connection.
    cut = rule is not None and rule.fault in (Fault.RESET, Fault.CLOSE)
    await _answer(send, answer, content, cut=cut)


async def _answer(send: Any, answer: SimulatedAnswer, content: bytes, *, cut: bool = False) -> None:
    headers = [
        (b"content-type", answer.content_type.encode()),
        (b"content-length", str(len(content) + int(cut)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in answer.headers),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    if cut:
        raise SandboxReset("[sandbox] connection reset after the request was read")
    await send({"type": "http.response.body", "body": content})


class _Connection:
    """The server's side of one connection, reached through uvicorn's ASGI ``send`` (a bound
    method of its request cycle, which holds the asyncio transport and, through
    ``on_response``, the protocol with its keep-alive timeout). ASGI itself has no way to
    close a connection without answering, which CLOSE and IDLE_CLOSE need; under another
    server ``of`` finds nothing and those faults fall back as documented."""

    def __init__(self, transport: asyncio.Transport, protocol: Any):
        self._transport, self._protocol = transport, protocol

    @classmethod
    def of(cls, send: Any) -> _Connection | None:
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        protocol = getattr(getattr(cycle, "on_response", None), "__self__", None)
        if not isinstance(transport, asyncio.Transport) or protocol is None:
            return None
        return cls(transport, protocol)

    @property
    def closing(self) -> bool:
        return self._transport.is_closing()

    async def drop(self, receive: Any) -> None:
        """Close the connection with no answer at all, then wait until the server has seen it
        go (else it would answer 500 to a closed socket and log an error)."""
        self._transport.close()
        with anyio.move_on_after(5):
            while (await receive())["type"] != "http.disconnect":
                pass

    def close_when_idle(self, seconds: float) -> None:
        """The server's own keep-alive timer, for this connection: after this answer, it
        closes the connection once idle ``seconds`` (uvicorn's ``timeout_keep_alive``)."""
        if hasattr(self._protocol, "timeout_keep_alive"):
            self._protocol.timeout_keep_alive = seconds


class SandboxReset(ConnectionResetError):
    """Raised on purpose after the answer started, so the server drops the connection."""


class _HideSandboxResets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SandboxReset))


logging.getLogger("uvicorn.error").addFilter(_HideSandboxResets())

# Set inside every request ``serve`` handles; uvicorn writes its access-log line from the
# ASGI ``send`` call, so in that same context.
_UNLOGGED: ContextVar[bool] = ContextVar("messaging_async_unlogged", default=False)


class _NoAccessLog(logging.Filter):
    """Drops uvicorn's access-log lines for requests that ``serve`` answers: they hold
    callback tokens, numbers and texts. ``access_log=False`` alone is not enough: uvicorn
    logs whenever the logger has a handler, and pytest (among others) attaches one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _UNLOGGED.get()


logging.getLogger("uvicorn.access").addFilter(_NoAccessLog())


def _without_access_log(app: Any) -> Any:
    async def unlogged(scope: Any, receive: Any, send: Any) -> None:
        _UNLOGGED.set(True)  # this request's own context: uvicorn runs each in a task
        await app(scope, receive, send)

    return unlogged


def _as_502(rule: Any) -> Any:
    from ._records import FaultRule

    return FaultRule(Fault.SERVER_ERROR, rule.endpoint, rule.host)


@asynccontextmanager
async def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False
) -> AsyncIterator[str]:
    """Serve an ASGI app (the sandbox, a ``WebhookReceiver``) with uvicorn on a loopback port;
    yields its base URL. Needs the ``[sandbox]`` extra.

    uvicorn's access log stays off unless ``access_log=True``: its lines hold callback
    tokens, numbers and texts. Turn it on only for an app whose hook paths a
    ``webhooks.AccessLogFilter`` keeps out of it.

    uvicorn runs on asyncio only. Under asyncio it runs in the running loop, detached rather
    than in a task group held across ``yield``, so this may be entered and exited in
    different tasks (pytest fixtures, app lifespans). Under any other backend (trio) it runs
    in a thread with an asyncio loop of its own, so the app's code runs in that thread.
    """
    if host not in LOOPBACK:
        raise ValueError("the sandbox only listens on the loopback interface")
    import uvicorn

    config = uvicorn.Config(
        app if access_log else _without_access_log(app),
        host=host,
        port=port,
        log_level="warning",
        access_log=access_log,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    if sniffio.current_async_library() == "asyncio":
        stopped, wait_stopped = _start_in_this_loop(server)
    else:
        stopped, wait_stopped = _start_in_a_thread(server)
    try:
        while not server.started:
            if stopped():
                raise RuntimeError(f"the sandbox could not listen on {host}:{port}")
            await anyio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        with anyio.CancelScope(shield=True):
            await wait_stopped()


_Started = tuple[Callable[[], bool], Callable[[], Awaitable[None]]]


def _start_in_this_loop(server: Any) -> _Started:
    """Run ``server`` as a detached task of the running asyncio loop."""
    finished = anyio.Event()

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits the process when it cannot bind: report it instead
            pass
        finally:
            finished.set()

    spawn_detached(run)
    return finished.is_set, finished.wait


def _start_in_a_thread(server: Any) -> _Started:
    """Run ``server`` on an asyncio loop of its own in a daemon thread: uvicorn cannot run on
    trio, and a blocking serve would stall the caller's loop."""
    thread = threading.Thread(
        target=asyncio.run, args=(server.serve(),), name="messaging-async-serve", daemon=True
    )
    thread.start()

    async def joined() -> None:
        await anyio.to_thread.run_sync(thread.join)

    return (lambda: not thread.is_alive()), joined
