"""Acceptance: failover, the no-resend rule, fatal stops — over respx and real sockets."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
import respx

from messaging_async import (
    ISMS_SMS_BASE_URLS,
    OutcomeStatus,
    OutcomeUnknownError,
    RetryPolicy,
    Sms,
    UnreachableError,
)

from .conftest import BALANCE_URL, all_accepted, make_client, sent_bodies
from .gateway import TestGateway, refused_base_url, serve_on_loopback

ACCEPTED_ONE = httpx.Response(
    200, json={"results": [{"dstno": "60123456789", "code": 2000, "sms_id": "7"}]}
)
FIRST, SECOND, THIRD, FOURTH = (f"{url}/isms_send_json.php" for url in ISMS_SMS_BASE_URLS)


def blast(count: int, prefix: str = "6012") -> list[Sms]:
    return [Sms(to=f"{prefix}{i:07d}", text=f"msg {i}") for i in range(count)]


async def test_first_host_refusing_sends_everything_through_the_second_once() -> None:
    with respx.mock(assert_all_called=False) as mock:
        first = mock.post(FIRST).mock(side_effect=httpx.ConnectError("Connection refused"))
        second = mock.post(SECOND).mock(side_effect=all_accepted)
        async with make_client(max_concurrency=2) as client:
            report = await client.send_sms_bulk(blast(200))
    assert report.all_accepted
    numbers = [m["dstno"] for body in sent_bodies(second.calls) for m in body["messages"]]
    assert Counter(numbers) == Counter(f"6012{i:07d}" for i in range(200))
    assert first.call_count <= 2  # cooled down after failing: later chunks go straight to host 2


async def test_failover_over_real_sockets_with_a_refusing_port() -> None:
    gateway = TestGateway()
    with serve_on_loopback(gateway) as healthy:
        async with make_client(
            sms_base_urls=[refused_base_url(), healthy], max_concurrency=3
        ) as client:
            report = await client.send_sms_bulk(blast(260))
            balance = await client.get_balance()
    assert report.all_accepted
    assert gateway.sent_count() == Counter((f"6012{i:07d}", f"msg {i}") for i in range(260))
    assert max(gateway.sent_count().values()) == 1
    assert balance.credits > 0


async def test_read_timeout_after_sending_is_unknown_and_never_resent() -> None:
    with respx.mock(assert_all_called=False) as mock:
        routes = [
            mock.post(url).mock(side_effect=httpx.ReadTimeout("timed out"))
            for url in (FIRST, SECOND, THIRD, FOURTH)
        ]
        async with make_client() as client:
            report = await client.send_sms_bulk(blast(30))
            with pytest.raises(OutcomeUnknownError) as caught:
                await client.send_sms("60123456789", "Your OTP is 123456")
    assert [o.status for o in report.outcomes] == [OutcomeStatus.UNKNOWN] * 30
    assert sum(route.call_count for route in routes) == 2  # one per request, no resend anywhere
    assert caught.value.outcome is not None
    assert caught.value.outcome.status is OutcomeStatus.UNKNOWN


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_5xx_page_after_sending_is_unknown(status: int) -> None:
    with respx.mock(assert_all_called=False) as mock:
        first = mock.post(FIRST).mock(
            return_value=httpx.Response(status, text="<html>Bad Gateway</html>")
        )
        second = mock.post(SECOND).mock(side_effect=all_accepted)
        async with make_client() as client:
            report = await client.send_sms_bulk(blast(3))
    assert {o.status for o in report.outcomes} == {OutcomeStatus.UNKNOWN}
    assert first.call_count == 1
    assert second.call_count == 0


async def test_opting_in_to_duplicates_resends_after_a_timeout() -> None:
    with respx.mock(assert_all_called=False) as mock:
        first = mock.post(FIRST).mock(side_effect=[httpx.ReadTimeout("slow"), ACCEPTED_ONE])
        async with make_client(retry=RetryPolicy.no_wait(allow_duplicate_sends=True)) as client:
            outcome = await client.send_sms("60123456789", "Your OTP is 123456")
    assert outcome.ok
    assert first.call_count == 2


async def test_every_host_refusing_is_not_sent_with_every_attempt_listed() -> None:
    with respx.mock(assert_all_called=False) as mock:
        for url in (FIRST, SECOND, THIRD, FOURTH):
            mock.post(url).mock(side_effect=httpx.ConnectError("refused"))
        async with make_client(retry=RetryPolicy.no_wait(max_attempts=6)) as client:
            report = await client.send_sms_bulk(blast(5))
            with pytest.raises(UnreachableError) as caught:
                await client.send_sms("60123456789", "hi")
    assert {o.status for o in report.outcomes} == {OutcomeStatus.NOT_SENT}
    assert len(caught.value.attempts) == 6
    assert any("www.isms.com.my: not sent (ConnectError" in note for note in caught.value.attempts)


async def test_balance_is_retried_after_a_5xx_and_honours_retry_after() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(BALANCE_URL).mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": "0"}, text="busy"),
                httpx.Response(429, headers={"Retry-After": "0"}),
                httpx.Response(200, json={"balance": 5}),
            ]
        )
        async with make_client(retry=RetryPolicy(backoff_initial=0.0, backoff_max=0.0)) as client:
            balance = await client.get_balance()
    assert balance.credits == 5
    assert route.call_count == 3


async def test_fatal_answer_on_chunk_k_leaves_later_chunks_not_sent() -> None:
    calls = 0

    def credits_run_out_at_chunk_3(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            return all_accepted(request)
        return httpx.Response(
            200, json={"status": "error", "code": -1004, "message": "-1004 = INSUFFICIENT CREDITS"}
        )

    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(side_effect=credits_run_out_at_chunk_3)
        async with make_client(max_concurrency=1) as client:
            report = await client.send_sms_bulk(blast(500))
    assert route.call_count == 3
    assert [o.status for o in report.outcomes[:100]] == [OutcomeStatus.ACCEPTED] * 100
    assert [o.status for o in report.outcomes[100:150]] == [OutcomeStatus.REJECTED] * 50
    assert [o.status for o in report.outcomes[150:]] == [OutcomeStatus.NOT_SENT] * 350
    assert report.stopped_by is not None
    assert report.stopped_by.code == -1004
    assert "-1004" in (report.outcomes[-1].reason or "")


async def test_credits_running_out_under_concurrency_keeps_the_invariants() -> None:
    gateway = TestGateway(credits=1_000)
    async with make_client(transport=gateway.transport(), max_concurrency=4) as client:
        report = await client.send_sms_bulk(blast(3_000))
    sent = gateway.sent_count()
    assert len(report) == 3_000
    for index, outcome in enumerate(report.outcomes):
        recorded = sent[(f"6012{index:07d}", f"msg {index}")]
        expected = 1 if outcome.status is OutcomeStatus.ACCEPTED else 0
        assert recorded == expected, (index, outcome.status)
    assert report.counts[OutcomeStatus.ACCEPTED] == 1_000
    assert report.counts[OutcomeStatus.NOT_SENT] >= 3_000 - 1_000 - 4 * 50


async def test_the_auth_error_on_the_first_chunk_stops_the_run() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(FIRST).mock(
            return_value=httpx.Response(200, json={"status": "error", "code": -1001})
        )
        async with make_client(max_concurrency=1) as client:
            report = await client.send_sms_bulk(blast(120))
    assert route.call_count == 1
    assert report.counts[OutcomeStatus.REJECTED] == 50
    assert report.counts[OutcomeStatus.NOT_SENT] == 70
    body = json.loads(route.calls[0].request.content)
    assert len(body["messages"]) == 50
