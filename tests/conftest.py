from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from messaging_async import IsmsClient, RetryPolicy

from .gateway import PASSWORD, USERNAME, TestGateway

JSON_URL = "https://www.isms.com.my/isms_send_json.php"
CLASSIC_URL = "https://www.isms.com.my/isms_send_all_id.php"
BALANCE_URL = "https://www.isms.com.my/isms_balance_json.php"


def all_accepted(request: httpx.Request) -> httpx.Response:
    """A respx side effect: iSMS accepting every message of a JSON-API request."""
    body = json.loads(request.content)
    results = [
        {"dstno": message["dstno"], "code": 2000, "sms_id": f"id-{position}"}
        for position, message in enumerate(body["messages"])
    ]
    return httpx.Response(
        200,
        json={"total_failed": 0, "total_credits_used": len(results), "results": results},
    )


def sent_bodies(calls: Any) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in calls]


def make_client(**overrides: Any) -> IsmsClient:
    settings: dict[str, Any] = {
        "username": USERNAME,
        "password": PASSWORD,
        "sender_id": "MyCo",
        "retry": RetryPolicy.no_wait(),
    }
    settings.update(overrides)
    return IsmsClient(**settings)


@pytest.fixture
def gateway() -> TestGateway:
    return TestGateway()


@pytest.fixture
async def client(gateway: TestGateway) -> AsyncIterator[IsmsClient]:
    async with make_client(transport=gateway.transport()) as opened:
        yield opened
