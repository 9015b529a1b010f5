"""``webhooks.py --stages``: the apps called in this process, on asyncio as uvicorn runs them
(each call in a task of its own), with no HTTP in between: µs per callback for answers that
stop at successive stages (401 after the token, 404 after the route look-up, 200 after
parsing and the handler), for comparing two commits (``PYTHONPATH=<other clone> … --stages``)
in the same minute. Its own module so that webhooks.py stays about the servers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from webhooks import TOKEN, request_of

Case = tuple[str, Any, Callable[[int], dict[str, Any]], bytes]


def stage_cases() -> list[Case]:
    """(label, app, the nth callback's scope, body) of each in-process case."""
    from urllib.parse import urlencode

    from _webhook_server import bare_app, on_event

    from messaging_async.hooks import BaseHooks
    from messaging_async.webhooks import MemoryDeduplicator, WebhookReceiver

    def receiver(**options: Any) -> Any:
        return WebhookReceiver(secret=TOKEN, on_delivery=on_event, on_whatsapp=on_event, **options)

    def scope(
        kind: str, wrong_token: bool = False, **changes: Any
    ) -> Callable[[int], dict[str, Any]]:
        def nth(n: int) -> dict[str, Any]:
            request = request_of(kind, n)
            query = urlencode(request["params"]).encode()
            if wrong_token:
                query = query.replace(TOKEN.encode(), b"x" * len(TOKEN))
            return {
                "type": "http",
                "method": request["method"],
                "path": "/hooks" + request["url"],
                "root_path": "/hooks",
                "query_string": query,
                "headers": [
                    (b"host", b"127.0.0.1:8000"),
                    (b"user-agent", b"Python/3.11 aiohttp/3.14"),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                ],
                "client": ("127.0.0.1", 50000),
                **changes,
            }

        return nth

    form = urlencode(request_of("isms whatsapp (form)", 1)["data"]).encode()
    plain, sms = receiver(), "smscommy delivery"
    return [
        ("401 (token checked, answered)", plain, scope(sms, wrong_token=True), b""),
        ("404 (token, route look-up)", plain, scope(sms, path="/hooks/nowhere"), b""),
        ("200 smscommy delivery", plain, scope(sms), b""),
        ("200 isms delivery", plain, scope("isms delivery"), b""),
        ("200 isms whatsapp (form)", plain, scope("isms whatsapp (form)"), form),
        (
            "200 smscommy delivery, MemoryDeduplicator",
            receiver(dedupe=MemoryDeduplicator()),
            scope(sms),
            b"",
        ),
        ("200 smscommy delivery, hooks listening", receiver(hooks=BaseHooks()), scope(sms), b""),
        (
            "floor: bare app, smscommy delivery",
            bare_app,
            scope(sms, path="/smscommy/delivery"),
            b"",
        ),
        (
            "floor: bare app, isms whatsapp (form)",
            bare_app,
            scope("isms whatsapp (form)", path="/isms/whatsapp"),
            form,
        ),
    ]


def stages(repeats: int = 15, number: int = 2_000) -> None:
    """Best µs per in-process call of each case, the cases interleaved round by round;
    every call a different message id (a de-duplicator sees each once)."""
    import asyncio

    cases = stage_cases()

    async def run(app: Any, scopes: list[dict[str, Any]], body: bytes) -> float:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        started = time.perf_counter()
        for scope in scopes:  # each in a task of its own, as uvicorn runs them
            await asyncio.create_task(app(scope, receive, send))
        return time.perf_counter() - started

    async def measure_all() -> list[float]:
        best = [float("inf")] * len(cases)
        for round_ in range(repeats):
            for index, (_, app, nth, body) in enumerate(cases):
                scopes = [nth(n) for n in range(round_ * number, (round_ + 1) * number)]
                best[index] = min(best[index], await run(app, scopes, body))
        return best

    best = asyncio.run(measure_all())
    for (label, *_), seconds in zip(cases, best, strict=True):
        print(f"| {label} | {seconds / number * 1e6:.1f} |")
