"""Issue 12, outcomes: exactly one outcome per recipient, and ``not_sent`` only when nothing
left — under bad items, absurd answers, failing input and ``aclose()`` from another task.

Every recipient read is reconciled against what the sandbox recorded (the suite's checker,
``messaging_async.testing.reconcile``): accepted ⇔ recorded once · rejected / not_sent ⇔ never ·
unknown ⇔ at most once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from messaging_async import (
    ClientClosedError,
    InputFailedError,
    MessagingError,
    Outcome,
    OutcomeStatus,
    OutcomeUnknownError,
    RetryPolicy,
    Sms,
    SmsComMyClient,
    ValidationError,
    WhatsAppTemplate,
)
from messaging_async.testing import FakeGateway, Fault, reconcile, serve

from .conftest import make_client
from .gateway import TestGateway, serve_on_loopback

NUMBER = "60123456789"


def sms_batch(count: int, tag: str = "") -> list[Sms]:
    return [Sms(to=f"6012{n:07d}", text=f"Hi {tag}{n}", ref=n) for n in range(count)]


def reconcile_read(
    outcomes: Iterable[Outcome], fake: FakeGateway, batch: list[Sms]
) -> Counter[str]:
    """The suite's invariant checker, over the items read (a prefix of ``batch``)."""
    read = list(outcomes)
    return reconcile(batch, read, fake.sent, read=len(read)).check()


# ------------------------------------------------------------------ 1. a bad item
def bogus_encoding(sms: Sms) -> Sms:
    """An Sms whose encoding slipped past the model's check (as an old pickle might)."""
    object.__setattr__(sms, "encoding", "bogus")
    return sms


class ExplodingText(str):
    """A text whose checks raise something no validator foresaw."""

    __slots__ = ()

    def isascii(self) -> bool:
        raise RuntimeError("a text that breaks the check")


async def test_bad_smses_at_100_and_250_of_300_are_rejected_and_siblings_go_on() -> None:
    fake = FakeGateway()
    batch = sms_batch(300)
    batch[100] = Sms(to="60120000100", text=ExplodingText("Hi 100"))
    batch[250] = bogus_encoding(batch[250])
    seen: list[Outcome] = []
    async with fake.isms_client(max_concurrency=4) as client:
        report = await client.send_sms_bulk(batch, on_outcome=seen.append)
    assert len(seen) == len(report) == 300
    counts = reconcile_read(report.outcomes, fake, batch)
    assert counts == {"accepted": 298, "rejected": 2}
    for bad in report.outcomes[100], report.outcomes[250]:
        assert bad.status is OutcomeStatus.REJECTED
        assert "invalid input" in (bad.reason or "")
    assert "RuntimeError" in (report.outcomes[100].reason or "")
    assert "encoding" in (report.outcomes[250].reason or "")
    assert len(fake.sent) == 298


async def test_a_template_param_that_cannot_be_a_string_is_that_message_rejected() -> None:
    fake = FakeGateway()
    batch = [
        WhatsAppTemplate(to=f"6012{n:07d}", template_code="otp", params=[f"{n:06d}"])
        for n in range(300)
    ]
    batch[250] = WhatsAppTemplate(to="60120000250", template_code="otp", params=[10**5000])
    async with fake.isms_client(max_whatsapp_concurrency=8) as client:
        report = await client.send_whatsapp_bulk(batch)
    assert report.counts == {"accepted": 299, "rejected": 1, "not_sent": 0, "unknown": 0}
    assert report.outcomes[250].status is OutcomeStatus.REJECTED
    assert "ValueError" in (report.outcomes[250].reason or "")
    assert len(fake.sent) == 299


async def test_an_unknown_encoding_is_a_validation_error_where_it_is_made() -> None:
    with pytest.raises(ValidationError) as made:
        Sms(to=NUMBER, text="hi", encoding="bogus")
    assert made.value.field == "encoding"
    assert Sms(to=NUMBER, text="hi", encoding="GSM").encoding == "gsm"
    fake = FakeGateway()
    async with fake.isms_client() as isms, fake.smscommy_client() as smscommy:
        for call in (
            lambda: isms.send_sms(NUMBER, "hi", encoding="bogus"),  # type: ignore[arg-type]
            lambda: isms.send_sms_bulk(sms_batch(3), encoding="bogus"),  # type: ignore[arg-type]
            lambda: smscommy.send_sms(NUMBER, "hi", encoding="bogus"),  # type: ignore[arg-type]
            lambda: smscommy.send_sms_bulk(sms_batch(3), encoding="x"),  # type: ignore[arg-type]
        ):
            with pytest.raises(ValidationError, match="encoding"):
                await call()
    assert fake.sent == []


async def test_gsm_as_a_plain_string_gets_the_same_check_as_encoding_gsm() -> None:
    fake = FakeGateway()
    async with fake.isms_client() as isms, fake.smscommy_client() as smscommy:
        with pytest.raises(ValidationError, match="GSM"):
            await isms.send_sms(NUMBER, "你好", encoding="gsm")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="GSM"):
            await smscommy.send_sms(NUMBER, "你好", encoding="gsm")  # type: ignore[arg-type]
        chinese = [Sms(to=NUMBER, text="你好", encoding="gsm")]
        report = await isms.send_sms_bulk(chinese)
        assert report.outcomes[0].status is OutcomeStatus.REJECTED
        report = await smscommy.send_sms_bulk(chinese)
        assert report.outcomes[0].status is OutcomeStatus.REJECTED
    assert fake.sent == []


# ------------------------------------------------------------------ 2. absurd answers
FIVE_THOUSAND_DIGITS = json.dumps(
    {
        "total_failed": 0,
        "total_credits_used": 1,
        "results": [{"dstno": NUMBER, "code": "1" * 5000, "sms_id": "1"}],
    }
)
NESTED_DEEP = "[" * 100_000 + "]" * 100_000


def answering(body: str) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, text=body)

    return httpx.MockTransport(handler), requests


@pytest.mark.parametrize("body", [FIVE_THOUSAND_DIGITS, NESTED_DEEP], ids=["digits", "deep"])
async def test_an_answer_that_breaks_the_parser_is_unknown_never_not_sent(body: str) -> None:
    transport, requests = answering(body)
    async with FakeGateway().isms_client(transport=transport) as client:
        report = await client.send_sms_bulk([Sms(to=NUMBER, text="hi")])
        assert report.outcomes[0].status is OutcomeStatus.UNKNOWN, report.outcomes[0].reason
        wa = await client.send_whatsapp_bulk([WhatsAppTemplate(to=NUMBER, template_code="otp")])
        assert wa.outcomes[0].status is OutcomeStatus.UNKNOWN, wa.outcomes[0].reason
        with pytest.raises(OutcomeUnknownError) as single:
            await client.send_sms(NUMBER, "hi")
        assert single.value.outcome is not None
        assert single.value.outcome.status is OutcomeStatus.UNKNOWN
        with pytest.raises(MessagingError):
            await client.send_whatsapp_template(NUMBER, "otp")
    assert len(requests) == 4  # each was sent once, never retried


# ------------------------------------------------------------------ 3. failing input
async def drain(
    stream: AsyncIterator[Outcome],
    into: list[Outcome],
    each: Callable[[Outcome], None] | None = None,
) -> None:
    async for outcome in stream:
        if each is not None:
            each(outcome)
        into.append(outcome)


def csv_rows(batch: list[Sms], fail_at: int) -> Iterator[Sms]:
    for row, sms in enumerate(batch):
        if row == fail_at:
            raise OSError("the CSV file is unreadable at row 120")
        yield sms


async def async_csv_rows(batch: list[Sms], fail_at: int) -> AsyncIterator[Sms]:
    for sms in csv_rows(batch, fail_at):
        await anyio.lowlevel.checkpoint()
        yield sms


ROWS: list[Callable[[list[Sms], int], Any]] = [csv_rows, async_csv_rows]


@pytest.mark.parametrize("rows", ROWS, ids=["sync", "async"])
async def test_failing_input_raises_with_the_report_of_everything_read(rows: Any) -> None:
    fake = FakeGateway()
    batch = sms_batch(300)
    hooked: list[Outcome] = []
    async with fake.isms_client(max_concurrency=2) as client:
        with pytest.raises(InputFailedError) as caught:
            await client.send_sms_bulk(rows(batch, 120), on_outcome=hooked.append)
    assert isinstance(caught.value.__cause__, OSError)
    report = caught.value.report
    assert report is not None
    assert len(report) == 120
    reconcile_read(report.outcomes, fake, batch)
    assert sorted(o.index for o in hooked) == list(range(120))
    assert sorted(hooked, key=lambda o: o.index) == list(report.outcomes)


@pytest.mark.parametrize("rows", ROWS, ids=["sync", "async"])
async def test_failing_input_streams_every_outcome_read_then_raises(rows: Any) -> None:
    fake = FakeGateway()
    batch = sms_batch(300)
    hooked: list[Outcome] = []
    streamed: list[Outcome] = []
    async with fake.isms_client(max_concurrency=2) as client:
        stream = client.stream_sms_bulk(rows(batch, 120), on_outcome=hooked.append)
        with pytest.raises(InputFailedError) as caught:
            await drain(stream, streamed)
    assert isinstance(caught.value.__cause__, OSError)
    assert sorted(o.index for o in streamed) == list(range(120))
    reconcile_read(streamed, fake, batch)
    assert sorted(o.index for o in hooked) == list(range(120))


# ------------------------------------------------------------------ 4. aclose
def arrived(fake: FakeGateway) -> int:
    """Requests that reached the sandbox, faulted ones included."""
    return fake.requests + sum(fake.faults_applied.values())


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll the sandbox's counters (it has no events to wait on), for at most 10 s."""
    for _ in range(1_000):
        if condition():
            return
        await anyio.sleep(0.01)
    raise AssertionError("the sandbox never got there")


BACKENDS = ["httpx", "aiohttp"]


def sandbox_client(fake: FakeGateway, url: str, backend: str, **settings: Any) -> SmsComMyClient:
    return fake.smscommy_client(base_url=url, http_backend=backend, **settings)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_nothing_leaves_after_aclose_returns_while_a_blast_runs_in_another_task(
    backend: str,
) -> None:
    fake = FakeGateway()
    batch = sms_batch(2_000)
    caught: list[ClientClosedError] = []

    hundred_accepted = anyio.Event()

    def count(outcome: Outcome) -> None:
        if outcome.index >= 100:
            hundred_accepted.set()

    async def blast(client: SmsComMyClient) -> None:
        try:
            await client.send_sms_bulk(batch, on_outcome=count)
        except ClientClosedError as exc:
            caught.append(exc)

    async with serve(fake) as url, anyio.create_task_group() as tasks:
        client = sandbox_client(fake, url, backend, max_concurrency=8)
        tasks.start_soon(blast, client)
        with anyio.fail_after(30):
            await hundred_accepted.wait()
            await client.aclose()
        recorded_at_close = len(fake.sent)
        requests_at_close = fake.requests
        await anyio.sleep(0.5)
        assert fake.requests == requests_at_close, "a request left after aclose() returned"
        assert len(fake.sent) == recorded_at_close
    (closed,) = caught
    assert closed.report is not None
    counts = reconcile_read(closed.report.outcomes, fake, batch)
    assert counts["accepted"] == recorded_at_close
    assert counts["unknown"] == 0  # requests out at the close were given their answers
    assert 0 < len(closed.report) < 2_000


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_stream_consumer_gets_an_error_when_the_client_closes(backend: str) -> None:
    fake = FakeGateway()
    batch = sms_batch(2_000)
    read = 0

    def counted() -> Iterator[Sms]:
        nonlocal read
        for sms in batch:
            read += 1
            yield sms

    streamed: list[Outcome] = []

    def close_at_50(outcome: Outcome) -> None:
        if len(streamed) == 49:  # another task closes the client while we iterate
            tasks.start_soon(client.aclose)

    async with serve(fake) as url, anyio.create_task_group() as tasks:
        client = sandbox_client(fake, url, backend, max_concurrency=4)
        stream = client.stream_sms_bulk(counted())
        with pytest.raises(ClientClosedError):
            await drain(stream, streamed, close_at_50)
        recorded = len(fake.sent)
        await anyio.sleep(0.3)
        assert len(fake.sent) == recorded
    assert len(streamed) == read < 2_000  # every item read reached the stream
    counts = reconcile_read(streamed, fake, batch)
    assert counts["accepted"] == recorded


async def test_a_stream_left_by_break_stops_sending_while_still_referenced() -> None:
    fake = FakeGateway()
    async with serve(fake) as url:
        client = sandbox_client(fake, url, "httpx", max_concurrency=4)
        async with client:
            stream = client.stream_sms_bulk(sms_batch(3_000))
            taken = 0
            async for _ in stream:
                taken += 1
                if taken == 120:
                    break
            at_break = fake.requests
            await anyio.sleep(0.5)
            settled = fake.requests
            await anyio.sleep(0.5)
            assert fake.requests == settled, "the stream kept sending after the break"
            assert settled - at_break <= 4, "more than the requests in flight at the break"
            await stream.aclose()
        assert stream is not None  # the generator was referenced all along


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_retry_waiting_when_the_client_closes_never_goes_out(backend: str) -> None:
    fake = FakeGateway()
    fake.inject(Fault.UNAVAILABLE, times=None)  # every answer is a 503: the send retries
    retry = RetryPolicy(max_attempts=50, max_elapsed=30.0, backoff_initial=0.2, backoff_max=0.2)
    caught: list[MessagingError] = []

    async def otp(client: SmsComMyClient) -> None:
        try:
            await client.send_sms(NUMBER, "OTP 123456")
        except MessagingError as exc:
            caught.append(exc)

    async with serve(fake) as url, anyio.create_task_group() as tasks:
        client = sandbox_client(fake, url, backend, retry=retry)
        tasks.start_soon(otp, client)
        await wait_until(lambda: arrived(fake) >= 2)
        with anyio.fail_after(20):  # a regression fails, never hangs
            await client.aclose()
        requests_at_close = arrived(fake)
        await anyio.sleep(0.6)
        assert arrived(fake) == requests_at_close, "a retry left after aclose() returned"
        tasks.cancel_scope.cancel()  # a regression must not leave the send retrying for ever
    (error,) = caught
    assert error.__class__.__name__ in {"OutcomeUnknownError", "UnreachableError"}
    assert fake.sent == []


async def test_a_send_cancelled_while_waiting_out_a_429_stays_not_sent() -> None:
    """429 says the gateway did not process it: an answer, but not one the caller reads, so a
    cancellation during the pause is still ``not_sent`` (never a false ``unknown``)."""
    answered: list[httpx.Request] = []

    def throttle(request: httpx.Request) -> httpx.Response:
        answered.append(request)
        return httpx.Response(429, headers={"Retry-After": "5"})

    retry = RetryPolicy(max_attempts=5, max_elapsed=30.0)
    seen: list[Outcome] = []
    batch = [Sms(to=NUMBER, text="hi")]
    transport = httpx.MockTransport(throttle)
    async with (
        FakeGateway().isms_client(transport=transport, retry=retry) as client,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(lambda: client.send_sms_bulk(batch, on_outcome=seen.append))
        # Cancelled in the pause, however slow the machine: once the 429 was answered and
        # nothing can run any more (no I/O here), the send is waiting out its 5 s.
        with anyio.fail_after(30):
            while not answered:  # noqa: ASYNC110 - the transport has no event to wait on
                await anyio.sleep(0.01)
            await anyio.wait_all_tasks_blocked()
        tasks.cancel_scope.cancel()
    assert len(answered) == 1
    assert [o.status for o in seen] == [OutcomeStatus.NOT_SENT]


async def test_two_tasks_closing_the_client_at_once_both_return() -> None:
    fake = FakeGateway()
    fake.inject(Fault.SLOW, times=None, delay=0.5)  # the OTP is out while both close
    async with serve(fake) as url:
        client = fake.isms_client(base_url=url)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.send_sms, NUMBER, "OTP 123456")
            await wait_until(lambda: arrived(fake) >= 1)
            with anyio.fail_after(10):
                async with anyio.create_task_group() as closers:
                    closers.start_soon(client.aclose)
                    closers.start_soon(client.aclose)
    assert len(fake.sent) == 1  # the OTP out at the close was answered, not cut short


@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_break_and_aclose_hold_under_trio_and_asyncio(library: str) -> None:
    """The same promises over a thread-served loopback gateway, on both event loops."""
    gateway = TestGateway()

    async def main(url: str) -> None:
        client = make_client(sms_base_urls=[url], max_concurrency=3)
        stream = client.stream_sms_bulk(sms_batch(5_000))
        taken = 0
        async for _ in stream:
            taken += 1
            if taken == 60:
                break
        at_break = len(gateway.requests)
        await anyio.sleep(0.5)
        assert len(gateway.requests) - at_break <= 3, "the stream kept sending after break"
        await client.aclose()
        closed_at = len(gateway.requests)
        await anyio.sleep(0.3)
        assert len(gateway.requests) == closed_at
        await stream.aclose()

    with serve_on_loopback(gateway) as url:
        anyio.run(main, url, backend=library)


async def test_an_invalid_item_waiting_for_the_consumer_keeps_its_outcome_at_close() -> None:
    read = 0

    def invalid() -> Iterator[Sms]:
        nonlocal read
        for n in range(1_000):
            read += 1
            yield Sms(to="not a number", text=f"x{n}")

    hooked: list[Outcome] = []
    async with FakeGateway().isms_client() as client:
        stream = client.stream_sms_bulk(invalid(), on_outcome=hooked.append)
        async for _ in stream:
            if len(hooked) >= 5:
                break
        await client.aclose()  # the producer is waiting for the consumer with item k read
        assert sorted(o.index for o in hooked) == list(range(read))
        await stream.aclose()
