"""Serving the sandbox as an ASGI app over a real socket, faults included."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

from .._fanout import spawn_detached
from ._records import Fault

if TYPE_CHECKING:
    from .gateway import FakeGateway

__all__ = ["serve", "serve_request"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


async def serve_request(
    fake: FakeGateway, scope: MutableMapping[str, Any], receive: Any, send: Any
) -> None:
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
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1").split(":")[0]
    path: str = scope["path"]
    rule = fake.take_fault(path, host)
    if rule is not None and not rule.fault.processes:
        # Over a socket, REFUSE cannot refuse: it answers like a proxy with no upstream.
        answer = fake.fault_answer(rule if rule.fault is not Fault.REFUSE else _as_502(rule), path)
    else:
        answer = fake.handle(
            scope["method"], path, scope.get("query_string", b"").decode("latin-1"), body
        )
    content = answer.body.encode()
    if rule is not None and rule.fault is Fault.TRUNCATED:
        content = content[: len(content) // 2]
    if rule is not None and rule.fault in (Fault.SLOW, Fault.HANG):
        await anyio.sleep(rule.delay if rule.fault is Fault.SLOW else 300)
    start = {
        "type": "http.response.start",
        "status": answer.status,
        "headers": [
            (b"content-type", answer.content_type.encode()),
            (
                b"content-length",
                str(len(content) + (1 if rule and rule.fault is Fault.RESET else 0)).encode(),
            ),
        ],
    }
    await send(start)
    if rule is not None and rule.fault is Fault.RESET:
        raise SandboxReset("[sandbox] connection reset after the request was read")
    await send({"type": "http.response.body", "body": content})


class SandboxReset(ConnectionResetError):
    """Raised on purpose after the answer started, so the server drops the connection."""


class _HideSandboxResets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SandboxReset))


logging.getLogger("uvicorn.error").addFilter(_HideSandboxResets())


def _as_502(rule: Any) -> Any:
    from ._records import FaultRule

    return FaultRule(Fault.SERVER_ERROR, rule.endpoint, rule.host)


@asynccontextmanager
async def serve(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app (the sandbox, a ``WebhookReceiver``) with uvicorn on a loopback port;
    yields its base URL. Needs the ``[sandbox]`` extra.

    uvicorn runs on asyncio only. Under asyncio it runs in the running loop, detached rather
    than in a task group held across ``yield``, so this may be entered and exited in
    different tasks (pytest fixtures, app lifespans). Under any other backend (trio) it runs
    in a thread with an asyncio loop of its own, so the app's code runs in that thread.
    """
    if host not in LOOPBACK:
        raise ValueError("the sandbox only listens on the loopback interface")
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
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
