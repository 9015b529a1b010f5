"""A test-side iSMS gateway, written from CONTRACT A (it never imports the SDK's wire module).

It serves in process (``TestGateway.transport()``) or on a real 127.0.0.1 socket
(``serve_on_loopback``), records every message it accepts, and can be told to misbehave.
"""

from __future__ import annotations

import atexit
import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import anyio
import httpx

from messaging_async.testing import FakeGateway, SentMessage, serve

USERNAME = "demo-user"
PASSWORD = "s3cr3t-Pa55word"


class TestGateway:
    """Answers the JSON API (A1), the classic API (A2) and balance (A4) like iSMS does."""

    __test__ = False  # not a pytest class

    def __init__(self, *, credits: int | None = None, delay: float = 0.0):
        self.credits = credits
        self.delay = delay
        self.sent: list[tuple[str, str]] = []  # (dstno, msg) of every accepted message
        # The same messages as the sandbox records them, ids included, for ``reconcile``.
        self.records: list[SentMessage] = []
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._next_id = 1000

    def sent_count(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.sent)

    def handle(self, path: str, body: bytes) -> tuple[int, str]:
        with self._lock:
            self.requests.append(body)
            if path.endswith("isms_send_json.php"):
                return 200, self._json_send(body)
            if path.endswith("isms_send_all_id.php"):
                return 200, self._classic_send(body)
            if path.endswith("isms_balance_json.php"):
                return 200, json.dumps({"status": "success", "code": 0, "balance": "1234.50"})
            return 404, "<html><body>Not Found</body></html>"

    def _json_send(self, body: bytes) -> str:
        try:
            request = json.loads(body)
        except ValueError:
            return json.dumps({"status": "error", "code": -1014, "message": "-1014 = INVALID JSON"})
        if request.get("un") != USERNAME or request.get("pwd") != PASSWORD:
            return json.dumps(
                {"status": "error", "code": -1001, "message": "-1001 = AUTHENTICATION FAILED"}
            )
        messages = request.get("messages", [])
        if len(messages) > 50:
            return json.dumps({"status": "error", "code": -1010, "message": "-1010"})
        if self.credits is not None and self.credits < len(messages):
            return json.dumps(
                {"status": "error", "code": -1004, "message": "-1004 = INSUFFICIENT CREDITS"}
            )
        results = []
        for message in messages:
            self.sent.append((message["dstno"], message["msg"]))
            self._next_id += 1
            sms_id = str(self._next_id)
            self.records.append(
                SentMessage(
                    gateway="isms",
                    endpoint="isms_send_json.php",
                    to=message["dstno"],
                    message_id=sms_id,
                    type=str(message.get("type", "")),
                    text=message["msg"],
                )
            )
            results.append({"dstno": message["dstno"], "code": 2000, "sms_id": sms_id})
        if self.credits is not None:
            self.credits -= len(messages)
        return json.dumps(
            {"total_failed": 0, "total_credits_used": len(messages), "results": results}
        )

    def _classic_send(self, body: bytes) -> str:
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        if form.get("un") != USERNAME or form.get("pwd") != PASSWORD:
            return "-1001"
        numbers = form["dstno"].split(";")
        for number in numbers:
            self.sent.append((number, form["msg"]))
        self._next_id += 1
        return f"2000 = SUCCESS:{self._next_id}"

    def transport(self) -> httpx.AsyncBaseTransport:
        return _InProcess(self)


class _InProcess(httpx.AsyncBaseTransport):
    def __init__(self, gateway: TestGateway):
        self._gateway = gateway

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if self._gateway.delay:
            await anyio.sleep(self._gateway.delay)
        status, text = self._gateway.handle(request.url.path, body)
        return httpx.Response(status, text=text)


@contextmanager
def serve_on_loopback(
    gateway: TestGateway, *, before_answer: Callable[[], None] | None = None
) -> Iterator[str]:
    """Serve ``gateway`` over HTTP/1.1 keep-alive on 127.0.0.1; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if before_answer is not None:
                before_answer()
            status, text = gateway.handle(self.path, body)
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return None

    with serve_handler(Handler) as url:
        yield url


@contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` (a standard-library request handler class) on 127.0.0.1 from a
    thread, a thread per connection; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve_in_a_thread(fake: FakeGateway) -> Iterator[str]:
    """Serve the sandbox on 127.0.0.1 from an event loop of its own in a thread; yields its
    base URL. For code that runs its own loop or none (the CLI, a fixture shared with
    synchronous tests, a benchmark driving worker processes)."""
    ready, stop = threading.Event(), threading.Event()
    url: list[str] = []

    async def run() -> None:
        async with serve(fake) as base:
            url.append(base)
            ready.set()
            await anyio.to_thread.run_sync(stop.wait)

    thread = threading.Thread(target=anyio.run, args=(run,), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield url[0]
    finally:
        stop.set()
        thread.join(10)


def refused_base_url() -> str:
    """A 127.0.0.1 URL whose port refuses connections: bound, never listening, and held so
    until the session ends. A port closed at once could be handed to a server that another
    test (or another suite on a busy machine) binds to port 0 next, which would answer."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    _HELD_PORTS.append(probe)
    return f"http://127.0.0.1:{probe.getsockname()[1]}"


_HELD_PORTS: list[socket.socket] = []


@atexit.register
def _release_held_ports() -> None:
    for probe in _HELD_PORTS:
        probe.close()
