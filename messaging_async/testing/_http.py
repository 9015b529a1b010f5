"""The sandbox's two HTTP edges, the only place in ``testing`` that uses httpx: the
in-process transport clients send through, and the client that delivers callbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx

from ._control import CallbackFailed, control_answer, is_control_path, is_loopback
from ._records import Fault, SimulatedAnswer

if TYPE_CHECKING:
    from .gateway import FakeGateway

__all__ = ["CallbackFailed", "WebhookTarget", "in_process_transport", "is_loopback"]

# Where the WebhookReceiver's routes are, relative to the target's base.
RECEIVER_PATHS = {
    "isms_whatsapp": "/isms/whatsapp",
    "isms_delivery": "/isms/delivery",
    "smscommy_delivery": "/smscommy/delivery",
    "smscommy_incoming": "/smscommy/incoming",
}


class _InProcess(httpx.AsyncBaseTransport):
    """Serves the sandbox without sockets, turning faults into the exceptions httpx raises."""

    def __init__(self, fake: FakeGateway):
        self._fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path, host, query = request.url.path, request.url.host, request.url.query.decode()
        if is_control_path(path):  # in process, every caller is local
            answer = await control_answer(self._fake, request.method, path, query, body)
            return _response(answer, answer.body.encode(), request)
        rule = self._fake.take_fault(path, host)
        if rule is not None and rule.fault is Fault.REFUSE:
            raise httpx.ConnectError(f"[sandbox] connection to {host} refused", request=request)
        if rule is not None and not rule.fault.processes:
            answer = self._fake.fault_answer(rule, path)
        else:
            content_type = request.headers.get("content-type", "")
            answer = self._fake.handle(request.method, path, query, body, content_type)
        content = answer.body.encode()
        if rule is not None:
            if rule.fault is Fault.HANG:
                read_timeout = (request.extensions.get("timeout") or {}).get("read")
                await anyio.sleep(read_timeout if read_timeout is not None else 3600)
                raise httpx.ReadTimeout("[sandbox] no answer", request=request)
            if rule.fault is Fault.RESET:
                raise httpx.ReadError(
                    "[sandbox] connection reset after the request was read", request=request
                )
            if rule.fault is Fault.CLOSE:  # what httpx raises when a socket closes unanswered
                raise httpx.RemoteProtocolError(
                    "[sandbox] server disconnected without sending a response", request=request
                )
            if rule.fault is Fault.TRUNCATED:
                content = content[: len(content) // 2]
            if rule.fault is Fault.SLOW:
                await anyio.sleep(rule.delay)
        return _response(answer, content, request)


def _response(answer: SimulatedAnswer, content: bytes, request: httpx.Request) -> httpx.Response:
    headers = [("content-type", answer.content_type), *answer.headers]
    return httpx.Response(answer.status, headers=headers, content=content, request=request)


def in_process_transport(fake: FakeGateway) -> httpx.AsyncBaseTransport:
    return _InProcess(fake)


class WebhookTarget:
    """Where the sandbox delivers callbacks: an ASGI app in process (a ``WebhookReceiver``)
    or the base URL of one served on this machine's loopback interface."""

    def __init__(self, target: Any, *, token: str, paths: Mapping[str, str] = RECEIVER_PATHS):
        if isinstance(target, str):
            host = urlsplit(target).hostname or ""
            if host != "localhost" and not is_loopback(host):
                raise ValueError("the sandbox only calls back to 127.0.0.1, ::1 or localhost")
            self._base, self._transport = target.rstrip("/"), None
        else:
            self._base, self._transport = (
                "http://sandbox-callbacks",
                httpx.ASGITransport(app=target),
            )
        self._token = token
        self._paths = dict(paths)
        self._client: httpx.AsyncClient | None = None
        self.answers: list[int] = []

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        if self._client is not None:
            yield
            return
        async with httpx.AsyncClient(transport=self._transport, timeout=10.0) as client:
            self._client = client
            try:
                yield
            finally:
                self._client = None

    async def get(self, route: str, params: Mapping[str, str]) -> int:
        return await self._send("GET", route, params=params)

    async def post_form(self, route: str, data: Mapping[str, str]) -> int:
        return await self._send("POST", route, data=data)

    async def _send(self, method: str, route: str, **kwargs: Any) -> int:
        if self._client is None:
            raise RuntimeError("use `async with target.session():`")
        params = {"token": self._token, **kwargs.pop("params", {})}
        url = self._base + self._paths[route]
        try:
            response = await self._client.request(method, url, params=params, **kwargs)
        except httpx.HTTPError as error:  # the URL holds the token: name only the route
            raise CallbackFailed(f"{route}: {type(error).__name__}") from None
        self.answers.append(response.status_code)
        return response.status_code
