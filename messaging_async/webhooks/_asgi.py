"""The ASGI plumbing of ``WebhookReceiver``: where a request's path is, reading its body
within a size limit, sending a plain-text answer, and the lifespan protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import WebhookError

__all__ = ["Receive", "Scope", "Send", "lifespan", "read_body", "relative_path", "respond"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_PLAIN_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_ENCODED: dict[str, tuple[bytes, bytes]] = {}  # answer text → (body, its length)


def relative_path(scope: Scope) -> str:
    """The path below the mount point, whichever way the framework reports it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refused (``WebhookError``) as soon as it is known to exceed ``limit``
    bytes: by its ``Content-Length``, or by the bytes received."""
    for name, value in scope.get("headers") or []:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise WebhookError(f"callback larger than {limit} bytes", too_large=True)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise WebhookError("the caller disconnected before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise WebhookError(f"callback larger than {limit} bytes", too_large=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]]) -> None:
    """``text`` as a plain-text answer. Its encoding is kept (the texts are the receiver's
    own constants, a dozen at most); the messages and their header list are built anew each
    time, as a middleware may add to them in place (Starlette's CORS middleware does)."""
    encoded = _ENCODED.get(text)
    if encoded is None:
        body = (text + "\n").encode()
        encoded = _ENCODED[text] = (body, str(len(body)).encode())
    body, length = encoded
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_PLAIN_TEXT, (b"content-length", length), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    """Served on its own (uvicorn), the app has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
