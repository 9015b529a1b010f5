"""The ASGI plumbing of ``WebhookReceiver``: where a request's path is, the headers a body
needs, reading the body within a size limit, the plain-text answers (built once, sent by the
receiver itself), and the lifespan protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple

from ..errors import WebhookError

__all__ = [
    "Answer",
    "Receive",
    "Scope",
    "Send",
    "answer",
    "body_headers",
    "lifespan",
    "read_body",
    "relative_path",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Answer(NamedTuple):
    """An answer built once, when the receiver is: its status, its body (the text and a new
    line, encoded) and every header, ``content-length`` included."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def answer(status: int, text: str, *headers: tuple[bytes, bytes]) -> Answer:
    """``text`` as a plain-text ``Answer`` with ``headers`` after the usual two."""
    body = (text + "\n").encode()
    return Answer(
        status,
        body,
        (
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ),
    )


def relative_path(scope: Scope) -> str:
    """The path below the mount point, whichever way the framework reports it."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"


def body_headers(scope: Scope) -> tuple[int, str]:
    """The request's largest ``Content-Length`` (0 when none is a number) and its
    ``Content-Type`` (``""`` when not sent), in one walk of its headers: the body read needs
    the one, the body's parser the other. ASGI servers hand header names in lower case."""
    length = 0
    content_type = ""
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            if value.isdigit():
                length = max(length, int(value))
        elif name == b"content-type":
            content_type = value.decode("latin-1")
    return length, content_type


async def read_body(receive: Receive, limit: int, length: int, into: list[bytes]) -> None:
    """The whole body, appended to ``into``, refused (``WebhookError``) as soon as it is
    known to exceed ``limit`` bytes: by its ``Content-Length`` (``length``, from
    ``body_headers``), or by the bytes received. A body in one message (the usual callback)
    is taken as it came. It returns nothing: the receiver takes its first step by hand
    (``_deadline.step_within``), and a coroutine that ends with a value ends in a
    ``StopIteration`` carrying it, one that ends with ``None`` in nothing."""
    if length > limit:
        raise WebhookError(f"callback larger than {limit} bytes", too_large=True)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise WebhookError("the caller disconnected before sending its body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise WebhookError(f"callback larger than {limit} bytes", too_large=True)
        if not message.get("more_body", False):
            if chunks:
                chunks.append(chunk)
                chunk = b"".join(chunks)
            into.append(chunk)
            return
        chunks.append(chunk)


async def lifespan(receive: Receive, send: Send) -> None:
    """Served on its own (uvicorn), the app has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
