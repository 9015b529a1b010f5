"""The whole uvicorn server path of one callback, in process and without sockets, for
counting instructions (valgrind's callgrind) where ``webhooks.py``'s servers are too noisy.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --toggle-collect=functools_reduce \\
        .venv/bin/python benchmarks/_webhook_protocol.py receiver|bare|fastapi KIND [N]

uvicorn's own ``HttpToolsProtocol`` (httptools' parser, the scope, the request's task,
``receive``/``send``, the response's bytes) is fed each request as the aiohttp client of
``webhooks.py`` sends it, on one keep-alive connection whose transport only notes what is
written. What the count leaves out is the same for every app: the sockets' system calls and
the event loop's select. Only the ``N`` callbacks after 100 for warming up are counted
(those run inside ``functools.reduce``). KIND is one of ``webhooks.KINDS``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import Any
from urllib.parse import urlencode

import uvicorn
from _webhook_server import TOKEN, WebhookReceiver, bare_app, fastapi_app, handled, on_event
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from webhooks import request_of


def raw_request(kind: str, n: int) -> bytes:
    """The ``n``th callback of ``kind``, byte for byte as aiohttp 3.14 sends it."""
    request = request_of(kind, n)
    head = (
        f"{request['method']} {request['url']}?{urlencode(request['params'])} HTTP/1.1\r\n"
        "Host: 127.0.0.1:37769\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
        "User-Agent: Python/3.11 aiohttp/3.14.5\r\n"
    )
    body = urlencode(request["data"]).encode() if request["method"] == "POST" else b""
    if body:
        head += (
            f"Content-Length: {len(body)}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        )
    return (head + "\r\n").encode() + body


class NotingTransport(asyncio.Transport):
    """A transport that sends nothing: it resolves ``answered`` when the body is written."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: asyncio.Future[None] | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if bytes(data).endswith((b"OK\n", b'"OK"')) and self.answered is not None:
            self.answered.set_result(None)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


def main(server: str, kind: str, count: int) -> None:
    app: Any
    if server == "receiver":
        app = WebhookReceiver(secret=TOKEN, on_delivery=on_event, on_whatsapp=on_event)
        root = "/hooks"
    else:
        app, root = (bare_app, "") if server == "bare" else (fastapi_app(), "")
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, root_path=root
    )
    config.load()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    protocol = HttpToolsProtocol(config, ServerState(), {}, _loop=loop)
    transport = NotingTransport()
    protocol.connection_made(transport)
    requests = [raw_request(kind, n) for n in range(count + 100)]

    def one(_: None, request: bytes) -> None:
        transport.answered = loop.create_future()
        protocol.data_received(request)
        loop.run_until_complete(transport.answered)
        loop.run_until_complete(asyncio.sleep(0))  # the request's task ends

    for request in requests[:100]:
        one(None, request)
    functools.reduce(one, requests[100:], None)
    assert handled[0] == count + 100, handled


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
