"""Acceptance: every shape of answer gives each recipient exactly one right outcome."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from messaging_async import (
    AuthenticationError,
    InsufficientCreditsError,
    InvalidNumberError,
    OutcomeUnknownError,
    Sms,
    UnexpectedAnswerError,
)

from .conftest import BALANCE_URL, JSON_URL, make_client

A, B, C = "60120000001", "60120000002", "60120000003"
THREE = [
    Sms(to=A, text="one", ref="a"),
    Sms(to=B, text="two", ref="b"),
    Sms(to=C, text="three", ref="c"),
]


async def run(answer: httpx.Response, messages: list[Sms] = THREE) -> Any:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(JSON_URL).mock(return_value=answer)
        async with make_client() as client:
            return await client.send_sms_bulk(messages)


def statuses(report: Any) -> list[str]:
    return [outcome.status.value for outcome in report.outcomes]


async def test_success_carries_ids_refs_and_credits() -> None:
    report = await run(
        httpx.Response(
            200,
            json={
                "total_failed": 0,
                "total_credits_used": 3,
                "results": [{"dstno": n, "code": 2000, "sms_id": f"id{n[-1]}"} for n in (A, B, C)],
            },
        )
    )
    assert statuses(report) == ["accepted"] * 3
    assert [o.message_id for o in report.outcomes] == ["id1", "id2", "id3"]
    assert [o.ref for o in report.outcomes] == ["a", "b", "c"]
    assert report.credits_used == Decimal(3)
    assert report.outcomes[0].raw == {"dstno": A, "code": 2000, "sms_id": "id1"}


async def test_partial_failure_maps_per_recipient_codes() -> None:
    report = await run(
        httpx.Response(
            200,
            json={
                "status": "partial",
                "total_failed": 1,
                "total_credits_used": 2,
                "results": [
                    {"dstno": A, "code": "2000", "trx_id": "t1"},
                    {"dstno": B, "code": -1008, "status": "invalid number"},
                    {"dstno": C, "code": 2000, "sms_id": "t3"},
                ],
            },
        )
    )
    assert statuses(report) == ["accepted", "rejected", "accepted"]
    assert report.outcomes[0].message_id == "t1"
    assert report.outcomes[1].code == -1008
    assert "invalid destination number" in (report.outcomes[1].reason or "")
    assert report.stopped_by is None


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(
            200, json={"status": "error", "code": -1004, "message": "-1004 = INSUFFICIENT CREDITS"}
        ),
        httpx.Response(200, text="-1004"),
        httpx.Response(200, text="\ufeff-1004 = INSUFFICIENT CREDITS"),
    ],
    ids=["json-error", "bare-string", "bare-string-with-bom"],
)
async def test_whole_request_error_rejects_every_recipient(answer: httpx.Response) -> None:
    report = await run(answer)
    assert statuses(report) == ["rejected"] * 3
    assert {o.code for o in report.outcomes} == {-1004}
    assert isinstance(report.stopped_by, InsufficientCreditsError)


async def test_missing_results_are_unknown() -> None:
    report = await run(
        httpx.Response(200, json={"status": "success", "code": 2000, "total_credits_used": 3})
    )
    assert statuses(report) == ["unknown"] * 3


async def test_results_shorter_than_the_chunk() -> None:
    report = await run(
        httpx.Response(
            200,
            json={
                "results": [
                    {"dstno": A, "code": 2000, "sms_id": "1"},
                    {"dstno": C, "code": 2000, "sms_id": "3"},
                ]
            },
        )
    )
    assert statuses(report) == ["accepted", "unknown", "accepted"]
    assert report.outcomes[2].message_id == "3"


async def test_the_same_number_twice_in_one_chunk() -> None:
    messages = [Sms(to=A, text="first"), Sms(to=B, text="x"), Sms(to=A, text="second")]
    report = await run(
        httpx.Response(
            200,
            json={
                "results": [
                    {"dstno": A, "code": 2000, "sms_id": "first"},
                    {"dstno": B, "code": -1009, "message": "invalid content"},
                    {"dstno": A, "code": 2000, "sms_id": "second"},
                ]
            },
        ),
        messages,
    )
    assert statuses(report) == ["accepted", "rejected", "accepted"]
    assert [o.message_id for o in report.outcomes] == ["first", None, "second"]


async def test_results_out_of_position_are_matched_by_number() -> None:
    report = await run(
        httpx.Response(
            200,
            json={
                "results": [
                    {"dstno": B, "code": 2000, "sms_id": "b"},
                    {"dstno": "+" + A, "code": 2000, "sms_id": "a"},
                ]
            },
        )
    )
    assert [(o.status.value, o.message_id) for o in report.outcomes] == [
        ("accepted", "a"),
        ("accepted", "b"),
        ("unknown", None),
    ]


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (httpx.Response(200, text="<html>maintenance</html>"), "unknown"),
        (httpx.Response(200, text='{"results": [{"dstno"'), "unknown"),
        (httpx.Response(200, json={"hello": "world"}), "unknown"),
        (httpx.Response(404, text="<html>Not Found</html>"), "rejected"),
    ],
)
async def test_unrecognised_answers(answer: httpx.Response, status: str) -> None:
    report = await run(answer)
    assert statuses(report) == [status] * 3
    assert "unrecognised answer" in (report.outcomes[0].reason or "")


async def test_single_send_raises_the_typed_error() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(JSON_URL)
        async with make_client() as client:
            route.mock(return_value=httpx.Response(200, json={"status": "error", "code": -1001}))
            with pytest.raises(AuthenticationError) as auth:
                await client.send_sms(A, "Your OTP is 123456")
            assert auth.value.code == -1001
            assert auth.value.fatal
            route.mock(
                return_value=httpx.Response(200, json={"results": [{"dstno": A, "code": -1008}]})
            )
            with pytest.raises(InvalidNumberError) as invalid:
                await client.send_sms(A, "hello")
            assert invalid.value.outcome is not None
            assert invalid.value.outcome.to == A
            route.mock(return_value=httpx.Response(200, text="<html>oops</html>"))
            with pytest.raises(OutcomeUnknownError):
                await client.send_sms(A, "hello")
            route.mock(
                return_value=httpx.Response(
                    200, json={"results": [{"dstno": A, "code": 2000, "sms_id": "9"}]}
                )
            )
            outcome = await client.send_sms(A, "hello", ref="order-1")
    assert outcome.ok
    assert outcome.message_id == "9"
    assert outcome.ref == "order-1"


@pytest.mark.parametrize(
    ("body", "credits"),
    [
        ('{"status": "success", "code": 0, "balance": "1,234.50"}', Decimal("1234.50")),
        ('{"Balance": 17}', Decimal(17)),
        ("88.5", Decimal("88.5")),
        ("\ufeff 42 ", Decimal(42)),
    ],
)
async def test_balance_parses_tolerantly(body: str, credits: Decimal) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(BALANCE_URL).mock(return_value=httpx.Response(200, text=body))
        async with make_client() as client:
            balance = await client.get_balance()
    assert balance.credits == credits
    assert balance.raw == body.lstrip("\ufeff")
    assert route.calls[0].request.content == b'{"un":"demo-user","pwd":"s3cr3t-Pa55word"}'


async def test_balance_errors() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(BALANCE_URL)
        async with make_client() as client:
            route.mock(return_value=httpx.Response(200, text="-1001"))
            with pytest.raises(AuthenticationError):
                await client.get_balance()
            route.mock(return_value=httpx.Response(200, text="<html>hello</html>"))
            with pytest.raises(UnexpectedAnswerError, match="hello"):
                await client.get_balance()
