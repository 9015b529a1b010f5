"""The sandbox's control API under ``/_sandbox/``: what a test in another language needs to
drive the sandbox over its socket (docs/testing.md, "Over a socket, from any language").

JSON in and out. Only loopback clients may use it (403 otherwise): the served sandbox
listens on loopback only, and this check keeps it so behind a forwarding proxy as well.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import cattrs

from ._records import Fault, FaultRule, SentMessage, SimulatedAnswer

if TYPE_CHECKING:
    from .gateway import FakeGateway

__all__ = [
    "CONTROL_PREFIX",
    "CallbackFailed",
    "control_answer",
    "forbidden",
    "is_control_path",
    "is_loopback",
]

CONTROL_PREFIX = "/_sandbox/"
_FAULTS = {fault.label: fault for fault in Fault}
_converter = cattrs.Converter()
_converter.register_unstructure_hook(Decimal, str)


class CallbackFailed(RuntimeError):
    """A callback could not reach the receiver (refused, timed out, cut off)."""


class _BadRequest(ValueError):
    """The control request's JSON is not what the endpoint takes (answered 400)."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_control_path(path: str) -> bool:
    return path.startswith(CONTROL_PREFIX)


def forbidden() -> SimulatedAnswer:
    return _json(403, {"error": "the control API answers loopback clients only"})


async def control_answer(
    fake: FakeGateway, method: str, path: str, query: str, body: bytes
) -> SimulatedAnswer:
    """Answer one control request (the caller has checked it comes from loopback)."""
    route = path[len(CONTROL_PREFIX) :].strip("/")
    handlers = _ROUTES.get(route)
    if handlers is None:
        return _json(404, {"error": f"no control endpoint {route!r}", "endpoints": _ENDPOINTS})
    handler = handlers.get(method)
    if handler is None:
        return _json(405, {"error": f"{route} takes {', '.join(sorted(handlers))}"})
    try:
        request = _request_of(body)
        status, answer = await handler(fake, dict(parse_qsl(query)), request)
    except _BadRequest as problem:
        return _json(400, {"error": str(problem)})
    except CallbackFailed as problem:
        return _json(502, {"error": f"the webhook could not be reached ({problem})"})
    return _json(status, answer)


_Answer = tuple[int, Any]


async def _sent(fake: FakeGateway, query: dict[str, str], _body: dict[str, Any]) -> _Answer:
    messages = fake.sent_to(query["to"]) if "to" in query else fake.sent
    return 200, {"count": len(messages), "sent": [_sent_record(m) for m in messages]}


def _sent_record(message: SentMessage) -> dict[str, Any]:
    record: dict[str, Any] = _converter.unstructure(message)
    return record


async def _faults(fake: FakeGateway, _query: dict[str, str], _body: dict[str, Any]) -> _Answer:
    return 200, {"faults": fake.describe_faults()}


async def _add_fault(fake: FakeGateway, _query: dict[str, str], body: dict[str, Any]) -> _Answer:
    fault = _FAULTS.get(body.get("fault"))  # type: ignore[arg-type]
    if fault is None:
        raise _BadRequest(f"'fault' must be one of {', '.join(_FAULTS)}")
    unknown = set(body) - {"fault", "endpoint", "host", "times", "delay", "code"}
    if unknown:
        raise _BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    delay = _optional(body, "delay", (int, float))
    rule = FaultRule(
        fault,
        endpoint=_optional(body, "endpoint", str),
        host=_optional(body, "host", str),
        times=_optional(body, "times", int) if "times" in body else 1,
        delay=0.5 if delay is None else float(delay),
        code=_optional(body, "code", (int, str)),
    )
    try:
        fake.add_fault_rule(rule)
    except ValueError as problem:
        raise _BadRequest(str(problem)) from None
    return 201, {"faults": fake.describe_faults()}


async def _clear_faults(
    fake: FakeGateway, _query: dict[str, str], _body: dict[str, Any]
) -> _Answer:
    fake.clear_faults()
    return 200, {"faults": []}


async def _inbound(fake: FakeGateway, _query: dict[str, str], body: dict[str, Any]) -> _Answer:
    sender, text = body.get("from"), body.get("text")
    if not isinstance(sender, str) or not isinstance(text, str):
        raise _BadRequest("give 'from' (the user's number) and 'text'")
    kind = _optional(body, "type", str) or "text"
    payload = await fake.receive_whatsapp(sender, text, message_type=kind)
    return 200, {"window_open": True, "webhook": fake.webhook is not None, "message": payload}


async def _reports(fake: FakeGateway, _query: dict[str, str], _body: dict[str, Any]) -> _Answer:
    if fake.webhook is None:
        return 409, {"error": "no webhook: start the sandbox with --webhook URL --webhook-token T"}
    return 200, {"delivered": await fake.deliver_reports()}


async def _reset(fake: FakeGateway, _query: dict[str, str], _body: dict[str, Any]) -> _Answer:
    fake.reset()
    return 200, {"reset": True}


_Handler = Callable[["FakeGateway", dict[str, str], dict[str, Any]], Awaitable[_Answer]]
_ROUTES: Mapping[str, Mapping[str, _Handler]] = {
    "sent": {"GET": _sent},
    "faults": {"GET": _faults, "POST": _add_fault, "DELETE": _clear_faults},
    "whatsapp/inbound": {"POST": _inbound},
    "reports": {"POST": _reports},
    "reset": {"POST": _reset},
}
_ENDPOINTS = [f"{m} {CONTROL_PREFIX}{route}" for route, ms in _ROUTES.items() for m in ms]


def _request_of(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except ValueError:
        raise _BadRequest("the body must be a JSON object") from None
    if not isinstance(request, dict):
        raise _BadRequest("the body must be a JSON object")
    return request


def _optional(body: dict[str, Any], name: str, kinds: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
        raise _BadRequest(f"{name!r} has the wrong type")
    return value


def _json(status: int, body: Any) -> SimulatedAnswer:
    return SimulatedAnswer(status, json.dumps(body, ensure_ascii=False), "application/json")
