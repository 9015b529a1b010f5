"""Acceptance: trio and asyncio alike; lazy input; streaming; cancellation storms on sockets."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.lowlevel
import httpx
import pytest

from messaging_async import InputFailedError, MessagingError, Outcome, OutcomeStatus, Sms
from messaging_async._detached import _detached_tasks
from messaging_async.testing import reconcile

from .conftest import make_client
from .gateway import TestGateway, serve_on_loopback


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test of this module runs on asyncio and on trio."""
    return str(request.param)


def personalised(count: int, tag: str = "") -> Iterator[Sms]:
    for i in range(count):
        yield Sms(to=f"6012{i:07d}", text=f"Hi {tag}{i}" if i % 5 else f"你好 {tag}{i}", ref=i)


def check_against_gateway(
    outcomes: list[Outcome], gateway: TestGateway, tag: str, read: int
) -> None:
    """Every recipient read has exactly one outcome, consistent with what the gateway recorded
    for that message (number and id included)."""
    with gateway._lock:
        records = list(gateway.records)
    reconcile(list(personalised(read, tag)), outcomes, records).check()


def test_the_same_bulk_send_passes_under_trio_and_asyncio() -> None:
    async def main() -> tuple[dict[str, int], int]:
        gateway = TestGateway(delay=0.001)
        async with make_client(transport=gateway.transport(), max_concurrency=4) as client:
            report = await client.send_sms_bulk(personalised(1_000))
            streamed = [outcome async for outcome in client.stream_sms_bulk(personalised(130, "s"))]
        check_against_gateway(list(report.outcomes), gateway, "", 1_000)
        return dict(report.counts), len(streamed)

    assert anyio.run(main, backend="trio") == anyio.run(main, backend="asyncio")
    counts, streamed = anyio.run(main, backend="trio")
    assert counts[OutcomeStatus.ACCEPTED] == 1_000
    assert streamed == 130


async def test_input_is_read_lazily_with_bounded_look_ahead() -> None:
    gateway = TestGateway(delay=10.0)  # nothing finishes: what was read is pure look-ahead
    read = 0

    def counting() -> Iterator[Sms]:
        nonlocal read
        for sms in personalised(100_000):
            read += 1
            yield sms

    async with (
        make_client(transport=gateway.transport(), max_concurrency=3) as client,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(client.send_sms_bulk, counting())
        with anyio.fail_after(60):  # the three slots' units read, however slow the machine
            while read < 3 * 50:  # noqa: ASYNC110 - the input has no event to wait on
                await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # time for a reader without a bound to run far ahead
        tasks.cancel_scope.cancel()
    # 3 chunks in flight, a 4th formed and waiting for a slot, < 50 of the other encoding
    assert 3 * 50 <= read <= 4 * 50 + 49


async def test_async_iterables_are_accepted() -> None:
    async def rows() -> AsyncIterator[Sms]:
        for sms in personalised(75):
            await anyio.lowlevel.checkpoint()
            yield sms

    gateway = TestGateway()
    async with make_client(transport=gateway.transport()) as client:
        report = await client.send_sms_bulk(rows())
    assert report.all_accepted
    assert len(report) == 75


async def test_stream_yields_every_outcome_and_stops_cleanly_on_break() -> None:
    """``async with`` closes the stream where the block ends: no request after it, every
    message that reached the gateway already reported, and (on trio) no generator left for
    the garbage collector to warn about."""
    gateway = TestGateway(delay=0.01)
    accounted: list[Outcome] = []
    async with make_client(transport=gateway.transport(), max_concurrency=2) as opened:
        seen: list[Outcome] = []
        async with opened.stream_sms_bulk(personalised(5_000), on_outcome=accounted.append) as s:
            async for outcome in s:
                seen.append(outcome)
                if len(seen) == 120:
                    break
        after_break = len(gateway.requests)
        with gateway._lock:
            reached = {record.to for record in gateway.records}
        assert reached <= {outcome.to for outcome in accounted}, (
            "a message that reached the gateway had no outcome when the block ended"
        )
        await anyio.sleep(0.1)
        assert len(gateway.requests) == after_break, (
            "the producer kept sending after the consumer left"
        )
        again = [o async for o in opened.stream_sms_bulk(personalised(60, "again"))]
    assert len(again) == 60
    assert all(o.ok for o in again)


async def test_a_stream_read_with_anext_stops_sending_at_aclose() -> None:
    gateway = TestGateway(delay=0.01)
    async with make_client(transport=gateway.transport(), max_concurrency=2) as client:
        stream = client.stream_sms_bulk(personalised(5_000))
        first = await anext(stream)
        await stream.aclose()
        after_close = len(gateway.requests)
        await anyio.sleep(0.1)
        assert len(gateway.requests) == after_close
    assert first.ok


async def test_a_client_without_async_with_streams_and_then_closes() -> None:
    client = make_client(transport=TestGateway().transport())
    streamed = [outcome async for outcome in client.stream_sms_bulk(personalised(70))]
    assert len(streamed) == 70
    assert all(outcome.ok for outcome in streamed)
    await client.aclose()
    with pytest.raises(MessagingError, match="closed"):
        await client.send_sms("60123456789", "hi")


async def test_aclose_stops_a_stream_that_is_still_running() -> None:
    gateway = TestGateway(delay=0.02)
    accounted: list[Outcome] = []
    client = make_client(transport=gateway.transport(), max_concurrency=2)
    stream = client.stream_sms_bulk(personalised(10_000), on_outcome=accounted.append)
    first = await anext(stream)
    await client.aclose()
    await anyio.sleep(0.1)
    requests = len(gateway.requests)
    await anyio.sleep(0.1)
    assert len(gateway.requests) == requests < 10
    assert first in accounted
    await stream.aclose()


async def collect(stream: AsyncIterator[Outcome], into: list[Outcome]) -> None:
    async for outcome in stream:
        into.append(outcome)


async def test_an_input_iterator_that_fails_reaches_the_stream_consumer() -> None:
    def broken() -> Iterator[Sms]:
        yield from personalised(60)
        raise RuntimeError("the CSV file is corrupt")

    gateway = TestGateway()
    accounted: list[Outcome] = []
    streamed: list[Outcome] = []
    async with make_client(transport=gateway.transport()) as client:
        stream = client.stream_sms_bulk(broken(), on_outcome=accounted.append)
        with pytest.raises(InputFailedError) as caught:
            await collect(stream, streamed)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "corrupt" in str(caught.value.__cause__)
    check_against_gateway(accounted, gateway, "", 60)
    check_against_gateway(streamed, gateway, "", 60)


async def test_cancelling_a_running_blast_50_times_leaves_the_client_healthy() -> None:
    rng = random.Random(20261121)
    gateway = TestGateway()
    timeout = httpx.Timeout(5.0, pool=0.5)  # a leaked pool slot would show up as PoolTimeout
    with serve_on_loopback(
        gateway, before_answer=lambda: anyio.from_thread.check_cancelled() if False else None
    ) as url:
        async with make_client(sms_base_urls=[url], max_concurrency=4, timeout=timeout) as client:
            for round_number in range(50):
                tag = f"r{round_number}-"
                accounted: list[Outcome] = []
                read = 0

                def counted(tag: str = tag) -> Iterator[Sms]:
                    nonlocal read
                    for sms in personalised(5_000, tag):
                        read += 1
                        yield sms

                with anyio.move_on_after(rng.uniform(0.0, 0.06)):
                    if round_number % 2:
                        await client.send_sms_bulk(counted(), on_outcome=accounted.append)
                    else:
                        async for _ in client.stream_sms_bulk(
                            counted(), on_outcome=accounted.append
                        ):
                            pass
                check_against_gateway(accounted, gateway, tag, read)
            report = await client.send_sms_bulk(personalised(400, "after-"))
    assert report.all_accepted, report.counts
    assert not _detached_tasks, "a stream producer outlived its client"


async def test_a_long_run_of_input_that_sends_nothing_lets_other_tasks_run() -> None:
    """Plain iterables are read without awaiting; invalid input never fills a unit, so the
    runner must still yield to the event loop now and then, or it starves everything else."""
    ticks_during_send: list[int] = []
    sending = True

    async def ticker() -> None:
        while sending:
            ticks_during_send.append(1)
            await anyio.lowlevel.checkpoint()

    invalid = (Sms(to="not a number", text="x") for _ in range(5_000))
    never_called = httpx.MockTransport(lambda request: httpx.Response(500))
    async with make_client(transport=never_called) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        await anyio.lowlevel.checkpoint()  # the ticker starts
        ticks_before = len(ticks_during_send)
        report = await client.send_sms_bulk(invalid)
        sending = False
    assert report.counts["rejected"] == 5_000
    assert len(ticks_during_send) - ticks_before >= 10, "the bulk run never yielded"
