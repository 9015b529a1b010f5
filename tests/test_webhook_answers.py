"""The receiver's per-callback plumbing (issue 17): answers built once and sent as new
messages, the body's two headers read in one walk, a one-message body taken as it came,
and the WhatsApp route's events read without the ``WhatsAppCallback`` around them."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from messaging_async import WebhookError, WebhookReceiver, webhooks
from messaging_async.webhooks._asgi import Message, body_headers, read_body
from messaging_async.webhooks._whatsapp import whatsapp_events

SECRET = "answers-secret-0123456789"


def form(payload: object) -> bytes:
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    return urlencode({"response": encoded}).encode()


class AddsHeaderInPlace:
    """A middleware that, like Starlette's CORS middleware, appends to the answer's own
    header list before passing the message on."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def adding(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"].append((b"x-added", b"1"))
            await send(message)

        await self.app(scope, receive, adding)


async def test_a_middleware_that_adds_to_an_answer_in_place_leaves_the_next_one_alone() -> None:
    async def on_delivery(event: Any) -> None:
        pass

    app = AddsHeaderInPlace(WebhookReceiver(secret=SECRET, on_delivery=on_delivery))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
        for n in range(3):
            for url in (
                f"/smscommy/delivery?token={SECRET}&MsgId={n}&Status=6",  # 200
                f"/smscommy/delivery?token=wrong-{SECRET}&MsgId={n}",  # 401
                f"/smscommy/delivery?token={SECRET}&Status=6",  # 400: no message id
                f"/smscommy/incoming?token={SECRET}",  # 404: no handler given
                f"/smscommy/delivery?token={SECRET}&MsgId={n}&Status=6",  # 200 again
            ):
                answer = await client.get(url)
                assert answer.headers.get_list("x-added") == ["1"], (n, url)
                assert int(answer.headers["content-length"]) == len(answer.content)
                assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def headers(*pairs: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "headers": list(pairs)}


def test_the_body_headers_are_read_in_one_walk() -> None:
    assert body_headers({"type": "http"}) == (0, "")
    assert body_headers(
        headers(
            (b"host", b"hooks"),
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", b"12"),
        )
    ) == (12, "application/json; charset=utf-8")
    # Of several lengths the largest counts (any over the limit refuses the body); a length
    # that is no number is none.
    assert body_headers(headers((b"content-length", b"70000"), (b"content-length", b"10"))) == (
        70000,
        "",
    )
    assert body_headers(headers((b"content-length", b"-5"), (b"content-length", b"x"))) == (0, "")


async def test_a_body_declared_too_large_is_refused_before_a_byte_is_read() -> None:
    async def receive() -> Message:
        raise AssertionError("the body was read")

    with pytest.raises(WebhookError) as refused:
        await read_body(receive, 100, 101, [])
    assert refused.value.too_large


async def test_a_body_in_one_message_or_several_is_read_whole() -> None:
    parts = [b"response=", b"abc", b"def"]

    def messages(chunks: list[bytes]) -> Any:
        queue = [
            {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
            for n, chunk in enumerate(chunks)
        ]

        async def receive() -> Message:
            return queue.pop(0)

        return receive

    whole = b"".join(parts)
    for chunks in (parts, [whole], [b"", whole, b""]):
        got: list[bytes] = []
        await read_body(messages(chunks), 100, 0, got)
        assert got == [whole]
    with pytest.raises(WebhookError) as refused:
        await read_body(messages([b"x" * 60, b"x" * 60]), 100, 0, [])
    assert refused.value.too_large


PAYLOADS: list[object] = [
    {"from": "60123456789", "messageId": "wamid.1", "type": "text", "text": {"body": "hi"}},
    {"id": "wamid.2", "status": "delivered", "recipient_id": "60123456789"},
    {
        "entry": [
            {
                "changes": [
                    {
                        "value": {
                            "metadata": {"display_phone_number": "60111111111"},
                            "messages": [{"from": "601", "id": "wamid.3", "type": "text"}],
                            "statuses": [{"id": "wamid.4", "status": "read"}],
                        }
                    }
                ]
            }
        ]
    },
    {"statuses": [{"id": "wamid.5"}]},  # a receipt without a status: malformed
    ["not", "an", "object"],
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", ""])
def test_the_receivers_whatsapp_reading_is_the_public_parsers(
    payload: object, content_type: str
) -> None:
    """``whatsapp_events`` (the receiver's) answers what ``parse_isms_whatsapp_callback``
    answers: its messages, then its receipts, or the same refusal."""
    body = form(payload)
    assert _outcome(whatsapp_events, body, content_type, {}, webhooks.DEFAULT_MAX_BYTES) == (
        _outcome(_public_events, body, content_type)
    )


@pytest.mark.parametrize(
    "body",
    [
        b"response=" + base64.b64encode(b"\xff\xfe{}"),  # decodes to bytes that are not UTF-8
        b"response=\xff\xfe",  # the body itself is not UTF-8
        b"response=" + base64.b64encode(b"[" * 20_000 + b"]" * 20_000),  # too deep to read
    ],
)
def test_the_receivers_whatsapp_reading_refuses_what_breaks_the_parse_as_malformed(
    body: bytes,
) -> None:
    """Whatever an input breaks in the parse (a decoder's error, the recursion limit), the
    receiver's reading answers ``WebhookError`` (400), as the public parser does, and
    nothing else (which the server would turn into a 500, and the gateway retry forever)."""
    refused = _outcome(whatsapp_events, body, "", {}, webhooks.DEFAULT_MAX_BYTES)
    assert refused == _outcome(_public_events, body, "")
    assert str(refused).startswith("refused: malformed callback (")


def _public_events(body: bytes, content_type: str) -> tuple[Any, ...]:
    callback = webhooks.parse_isms_whatsapp_callback(body, content_type=content_type)
    return (*callback.messages, *callback.receipts)


def _outcome(parse: Any, *args: Any) -> object:
    """What ``parse`` answers: its events, or its refusal's message."""
    try:
        events = parse(*args)
    except WebhookError as error:
        return f"refused: {error}"
    assert events
    return events


def test_the_receivers_whatsapp_reading_takes_the_query_when_the_body_has_none() -> None:
    query = {"response": base64.b64encode(json.dumps(PAYLOADS[0]).encode()).decode()}
    (message,) = whatsapp_events(b"", "", query, webhooks.DEFAULT_MAX_BYTES)
    assert message.message_id == "wamid.1"
    with pytest.raises(WebhookError, match="no 'response'"):
        whatsapp_events(b"", "", {}, webhooks.DEFAULT_MAX_BYTES)


async def test_the_query_is_read_with_the_token_out_and_first_values_kept() -> None:
    """The first value of a repeated name is kept, the token is never a parameter, and a
    token given twice is refused."""
    reports: list[Any] = []

    async def on_delivery(event: Any) -> None:
        reports.append(event)

    app = WebhookReceiver(secret=SECRET, on_delivery=on_delivery)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
        plain = await client.get(f"/smscommy/delivery?MsgId=1&token={SECRET}&Status=6")
        repeated = await client.get(
            f"/smscommy/delivery?MsgId=2&Status=7&token={SECRET}&MsgId=3&Status=6"
        )
        twice = await client.get(f"/smscommy/delivery?token={SECRET}&MsgId=4&token={SECRET}")
    assert (plain.status_code, repeated.status_code, twice.status_code) == (200, 200, 401)
    assert [dict(report.raw) for report in reports] == [
        {"MsgId": "1", "Status": "6"},
        {"MsgId": "2", "Status": "7"},
    ]
    assert [report.status_code for report in reports] == ["6", "7"]


async def test_paths_are_remembered_per_mount_point_and_only_a_few() -> None:
    """The receiver remembers each (path, root_path)'s relative path: the same path under
    another mount point is another route (or none); only routes' paths are remembered, and
    a caller sending endless spellings of them fills only ``_PATHS_KEPT`` entries, routes
    still answered after that."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def on_delivery(event: Any) -> None:
        pass

    app = WebhookReceiver(secret=SECRET, on_delivery=on_delivery)
    query = f"token={SECRET}&MsgId=1&Status=6".encode()

    async def answer(path: str, root: str) -> int:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": root}
        await app({**scope, "query_string": query, "headers": []}, receive, send)
        return statuses[-1]

    for _ in range(2):  # the second time from what was remembered
        assert await answer("/hooks/smscommy/delivery", "/hooks") == 200
        assert await answer("/hooks/smscommy/delivery/", "/hooks") == 200
        assert await answer("/smscommy/delivery", "") == 200
        assert await answer("/hooks/smscommy/delivery", "") == 404
        assert await answer("/hooks/smscommy/delivery", "/other") == 404
    for n in range(3 * webhooks.receiver._PATHS_KEPT):
        assert await answer(f"/nowhere/{n}", "") == 404
    assert len(app._paths) == 3  # only paths that are routes are remembered
    for n in range(3 * webhooks.receiver._PATHS_KEPT):
        assert await answer("/smscommy/delivery" + "/" * n, "") == 200
    assert len(app._paths) == webhooks.receiver._PATHS_KEPT
    assert await answer("/isms/delivery/smscommy/delivery", "/isms/delivery") == 200
