"""Every constructor argument of both clients, and of RetryPolicy, refuses bad values with a
``ValidationError`` naming the argument, before a connection pool is built."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from messaging_async import (
    IsmsClient,
    RetryPolicy,
    SmsComMyClient,
    ValidationError,
    _client,
    _transport,
)

NAN, INF = math.nan, math.inf
# Values no argument of these types accepts; one bad value per line of the tables below.
NOT_TEXT = [None, 123, b"bytes", "", "   ", "\ud800"]
BAD_TIMEOUTS = [NAN, INF, -INF, -1, 0, "5", True, httpx.Timeout(NAN), httpx.Timeout(-1.0)]
BAD_CONCURRENCY = [0, -1, "3", 1.5, True, 10**6, None]
# None is no bad value for a URL list: it means the environment's URL or the default.
BAD_URL_LISTS = [123, "https://host.example", [], [123], ["ftp://host.example"], [None]]
BAD_URLS = [123, "", "ftp://host.example", ["https://host.example"]]

COMMON: dict[str, list[Any]] = {
    "username": NOT_TEXT,
    "password": NOT_TEXT,
    "timeout": BAD_TIMEOUTS,
    "max_concurrency": BAD_CONCURRENCY,
    "retry": ["often", 3, {}, RetryPolicy],
    "default_country": [60, "Malaysia", "", "0", "+", "\ud800", b"MY"],
    "transport": ["mock", object(), httpx.MockTransport],
    "http_backend": ["curl", None, 1, ""],
    "single_send_capacity": [-1, "8", 1.5, True, None, 10**6],
    "max_connections": [0, -1, "3", 1.5, True, 10**6],
    "rate_limit": [10, "100/s", {"messages_per_second": 10}],
    "hooks": [object(), "hooks", [object()], 3],
    "proxy": [123, "", "127.0.0.1:3128", "ftp://proxy.example", b"http://proxy.example"],
    "verify": [None, 1, "/no/such/ca-bundle.pem", b"x"],
    "trust_env": [None, 1, "yes"],
}
ISMS: dict[str, list[Any]] = {
    **COMMON,
    "sender_id": [123, "", "My Co", "TooLongSender", "\ud800", b"MyCo"],
    "app_id": [123, "", "  ", "\ud800"],
    "app_secret": [123, "", "  ", "\ud800"],
    "waba_number": [60123456789, "", "abc", "+6011111111", "\ud800"],
    "base_url": BAD_URLS,
    "sms_base_urls": BAD_URL_LISTS,
    "waba_base_urls": BAD_URL_LISTS,
    "max_whatsapp_concurrency": BAD_CONCURRENCY,
}
SMSCOMMY: dict[str, list[Any]] = {
    **COMMON,
    "sender": [123, "", "x" * 20, "\ud800"],
    "sender_id": [123, "", "x" * 20, "\ud800"],
    "base_url": BAD_URLS,
    "no_dr_batch_size": BAD_CONCURRENCY,
}
VALID: dict[type, dict[str, Any]] = {
    IsmsClient: {"username": "u", "password": "p", "app_id": "a", "app_secret": "s",
                 "waba_number": "60123456789"},
    SmsComMyClient: {"username": "u", "password": "p", "base_url": "https://sms.example"},
}  # fmt: skip


def cases() -> list[Any]:
    return list(_cases())


def _cases() -> Iterator[Any]:
    for cls, table in ((IsmsClient, ISMS), (SmsComMyClient, SMSCOMMY)):
        for argument, values in table.items():
            for position, value in enumerate(values):
                yield pytest.param(cls, argument, value, id=f"{cls.__name__}-{argument}-{position}")


@pytest.fixture
def pools_built(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every connection pool (``Transport``) a client builds."""
    built: list[object] = []
    real = _transport.Transport

    def spy(**settings: Any) -> object:
        built.append(settings)
        return real(**settings)

    monkeypatch.setattr(_client, "Transport", spy)
    return built


@pytest.mark.parametrize(("cls", "argument", "value"), cases())
def test_a_bad_argument_is_a_validation_error_naming_it(
    cls: type, argument: str, value: Any, pools_built: list[object]
) -> None:
    with pytest.raises(ValidationError) as caught:
        cls(**{**VALID[cls], argument: value})
    assert caught.value.field == argument
    str(caught.value).encode("utf-8")  # serialisable, even when the value was not
    assert pools_built == []  # refused before anything was allocated


@pytest.mark.parametrize("cls", [IsmsClient, SmsComMyClient])
async def test_the_valid_settings_build_one_pool(cls: type, pools_built: list[object]) -> None:
    async with cls(**VALID[cls], timeout=httpx.Timeout(5.0, pool=None)):
        pass
    assert len(pools_built) == 1


RETRY: dict[str, list[Any]] = {
    "max_attempts": [0, -1, "3", 2.0, True, None],
    "max_elapsed": [0, -1, NAN, INF, "60", True, None],
    "backoff_initial": [-1, NAN, INF, "0.5", None],
    "backoff_max": [-1, NAN, INF, "8", None],
    "cooldown": [-0.1, NAN, INF, "30", None],
    "wait": ["no", 0, None],
    "allow_duplicate_sends": ["no", 1, None],
}


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        pytest.param(argument, value, id=f"{argument}-{position}")
        for argument, values in RETRY.items()
        for position, value in enumerate(values)
    ],
)
def test_retry_policy_refuses_bad_values_naming_the_field(argument: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        RetryPolicy(**{argument: value})
    assert caught.value.field == argument


def test_retry_policy_takes_whole_seconds_and_zero_pauses() -> None:
    policy = RetryPolicy(max_elapsed=10, backoff_initial=0, backoff_max=0, cooldown=0)
    assert policy.backoff(3) == 0.0


@pytest.mark.parametrize(
    "amount",
    ["1e100000000", Decimal("1e100000000"), 10**5000, "1e999", 10**12, "0.001", "NaN", "-5",
     0, True, None, "1" * 10_000, 1e300, INF],
    ids=lambda amount: type(amount).__name__,
)  # fmt: skip
async def test_transfer_credits_refuses_absurd_amounts_before_sending(amount: Any) -> None:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, text="1707")

    settings = {**VALID[SmsComMyClient], "transport": httpx.MockTransport(answer)}
    async with SmsComMyClient(**settings) as client:
        with pytest.raises(ValidationError) as caught:
            await client.transfer_credits("customer1", amount, path="ITransferCredits.aspx")
        assert caught.value.field == "credits"
        assert requests == []
        done = await client.transfer_credits("customer1", "1500.50", path="ITransferCredits.aspx")
    assert done.credits == Decimal("1500.50")
    assert b"credit=1500.50" in requests[0].content
