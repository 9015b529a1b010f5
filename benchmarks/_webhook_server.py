"""Serve a webhook app with uvicorn on a free loopback port (for benchmarks/webhooks.py).

python benchmarks/_webhook_server.py receiver|bare|fastapi PORT_FILE [asyncio|uvloop]

- ``receiver``: ``WebhookReceiver`` mounted at ``/hooks`` (root_path), as users deploy it.
- ``bare``: the floor of any receiver: a plain ASGI app that checks the token, reads the
  query (and the body of a POST), parses it with the standard library and answers 200.
- ``fastapi``: FastAPI endpoints doing the same token check and the SDK's parsers.

The loop is chosen here, not by uvicorn's ``loop=`` setting: that one applies only to
``uvicorn.run``, and this script runs ``server.serve()`` in the loop it starts itself:
``asyncio.run`` (a plain install) or ``uvloop.run`` (what ``uvicorn[standard]`` serves on).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from messaging_async.webhooks import (
    WebhookReceiver,
    parse_isms_delivery,
    parse_isms_whatsapp_callback,
    parse_smscommy_delivery,
)

TOKEN = "benchmark-token-0123456789"
handled = [0]


async def on_event(event: Any) -> None:
    handled[0] += 1


def fastapi_app() -> FastAPI:
    app = FastAPI()

    def checked(request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if params.pop("token", None) != TOKEN:
            raise HTTPException(status_code=401)
        return params

    @app.get("/smscommy/delivery")
    async def smscommy_delivery(request: Request) -> str:
        await on_event(parse_smscommy_delivery(checked(request)))
        return "OK"

    @app.get("/isms/delivery")
    async def isms_delivery(request: Request) -> str:
        await on_event(parse_isms_delivery(checked(request)))
        return "OK"

    @app.post("/isms/whatsapp")
    async def isms_whatsapp(request: Request) -> str:
        query = checked(request)
        content_type = request.headers.get("content-type", "")
        callback = parse_isms_whatsapp_callback(
            await request.body(), content_type=content_type, query=query
        )
        for event in (*callback.messages, *callback.receipts):
            await on_event(event)
        return "OK"

    return app


Message = MutableMapping[str, Any]


async def bare_app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """The floor: token, query (and form body) parsed by the standard library, 200."""
    if scope["type"] != "http":
        return
    query = dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
    status = 401
    if hmac.compare_digest(query.pop("token", "").encode(), TOKEN.encode()):
        status = 200
        if scope["method"] == "POST":
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
            await on_event(json.loads(base64.b64decode(form["response"])))
        else:
            await on_event(query)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"3")],
        }
    )
    await send({"type": "http.response.body", "body": b"OK\n"})


async def main(kind: str, port_file: Path) -> None:
    app: Any
    if kind == "receiver":
        app = WebhookReceiver(secret=TOKEN, on_delivery=on_event, on_whatsapp=on_event)
        root = "/hooks"
    elif kind == "bare":
        app, root = bare_app, ""
    else:
        app, root = fastapi_app(), ""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, root_path=root
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    loop = type(asyncio.get_running_loop())
    port = server.servers[0].sockets[0].getsockname()[1]
    port_file.write_text(f"{port} {loop.__module__}.{loop.__name__}")  # noqa: ASYNC240
    await task


def run_on(loop: str) -> Callable[[Any], None]:
    """``asyncio.run`` or ``uvloop.run``, by name."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run
    if loop != "asyncio":
        sys.exit(f"unknown loop {loop!r}: asyncio or uvloop")
    return asyncio.run


if __name__ == "__main__":
    run_on(sys.argv[3] if len(sys.argv) > 3 else "asyncio")(main(sys.argv[1], Path(sys.argv[2])))
