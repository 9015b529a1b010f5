"""Reliability under faults, over real loopback sockets: every recipient ends in exactly one
outcome, consistent with what the sandbox recorded, and our retries never send twice.

  accepted ⇔ recorded exactly once · rejected / not_sent ⇔ never · unknown ⇔ at most once
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import sniffio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging_async import IsmsClient, Outcome, OutcomeStatus, RetryPolicy, Sms
from messaging_async.testing import FakeGateway, Fault, reconcile, serve

from .gateway import refused_base_url

FAST = httpx.Timeout(0.3, connect=0.3, pool=1.0)  # a hang costs 0.3 s, not 15
RETRY = RetryPolicy(
    max_attempts=6, max_elapsed=5.0, backoff_initial=0.01, backoff_max=0.05, cooldown=0.3
)


def messages(count: int, tag: str = "") -> list[Sms]:
    texts = (
        "Hi {n}{tag}, parcel ready",
        "Salam {n}{tag}, bungkusan siap",
        "您好 {n}{tag} 包裹已到",
    )
    return [
        Sms(to=f"601{2 + n % 8}{n:07d}", text=texts[n % 3].format(n=n, tag=tag), ref=n)
        for n in range(count)
    ]


# (anyio backend, http_backend): httpx on both event loops; aiohttp runs on asyncio only.
EVERY_BACKEND = [("asyncio", "httpx"), ("trio", "httpx"), ("asyncio", "aiohttp")]


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test of this module runs on asyncio and on trio, unless it says otherwise."""
    return str(request.param)


def assert_runs_on(client: Any, backend: str) -> None:
    """The ``http_backend`` asked for is the one sending (the parameter was once ignored)."""
    exchange = client._transport._exchange
    assert (
        type(exchange).__name__ == {"httpx": "HttpxExchange", "aiohttp": "AiohttpExchange"}[backend]
    )


@asynccontextmanager
async def served(fake: FakeGateway, count: int = 1) -> AsyncIterator[list[str]]:
    """The same sandbox on ``count`` loopback ports (several hosts of one gateway)."""
    async with serve(fake) as first:
        if count == 1:
            yield [first]
            return
        async with serve(fake) as second:
            yield [first, second]


@pytest.mark.parametrize(("anyio_backend", "backend"), EVERY_BACKEND)
async def test_isms_under_every_fault_mixed_at_random(backend: str) -> None:
    fake = FakeGateway()
    fake.chaos(rate=0.3, seed=8, delay=0.5)  # slow answers are slower than the read timeout
    async with served(fake, 2) as urls:
        hosts = [refused_base_url(), *urls]  # the first base URL refuses every connection
        isms = fake.isms_client(
            base_url=None,
            sms_base_urls=hosts,
            timeout=FAST,
            retry=RETRY,
            max_concurrency=8,
            http_backend=backend,
        )
        async with isms:
            assert_runs_on(isms, backend)
            batch = messages(2_000)
            report = await isms.send_sms_bulk(batch)
    counts = reconcile(batch, report.outcomes, fake.sent).check()
    assert counts["accepted"] > 1_000
    assert counts["unknown"] > 0  # faults after processing happened, and were not re-sent
    assert set(fake.faults_applied) >= {
        "hang",
        "reset",
        "server_error",
        "unavailable",
        "truncated",
        "not_json",
    }


@pytest.mark.parametrize(("anyio_backend", "backend"), EVERY_BACKEND)
async def test_smscommy_retries_under_faults_never_duplicate(backend: str) -> None:
    fake = FakeGateway()
    fake.chaos(rate=0.3, seed=5, delay=0.5)
    async with served(fake) as (url,):
        retry = RetryPolicy(max_attempts=10, max_elapsed=10.0, backoff_initial=0.0, backoff_max=0.0)
        async with fake.smscommy_client(
            base_url=url, timeout=FAST, retry=retry, max_concurrency=8, http_backend=backend
        ) as smsmy:
            assert_runs_on(smsmy, backend)
            batch = messages(300)
            report = await smsmy.send_sms_bulk(batch)
    counts = reconcile(batch, report.outcomes, fake.sent).check()
    assert counts["accepted"] == 300  # with a seqno every ambiguous failure could be retried
    assert sum(fake.faults_applied.values()) > 50
    retried = [seqnos for seqnos in fake.seqnos_by_message.values() if seqnos]
    assert len(retried) == 300
    assert all(len(seqnos) == 1 for seqnos in retried), "a retry used a different seqno"


async def test_a_gateway_that_flips_between_healthy_and_faulty() -> None:
    fake = FakeGateway()
    async with served(fake, 2) as urls, anyio.create_task_group() as tasks:

        async def flip() -> None:
            for turn in range(1_000):
                # Faulty first, and a faulty turn lasts until 4 requests met it: on a loaded
                # machine the client may start after a timed turn ended, and a healthy turn
                # alone can carry the whole blast. Seed 0's third fault is TRUNCATED (the
                # gateway processed the request), so at least one unit must end unknown.
                fake.chaos(rate=0.0 if turn % 2 else 0.8, seed=turn, delay=0.5)
                if turn % 2:
                    await anyio.sleep(0.05)
                    continue
                start = fake.requests
                while fake.requests < start + 4:  # noqa: ASYNC110 - the sandbox has no request event
                    await anyio.sleep(0.005)

        tasks.start_soon(flip)
        await anyio.sleep(0.23)
        async with fake.isms_client(
            sms_base_urls=urls, timeout=FAST, retry=RETRY, max_concurrency=6
        ) as isms:
            batch = messages(2_000, "-flip")
            report = await isms.send_sms_bulk(batch)
        tasks.cancel_scope.cancel()
    counts = reconcile(batch, report.outcomes, fake.sent).check()
    assert counts["accepted"] > 0
    assert counts["unknown"] > 0


async def test_a_host_outage_mid_blast_and_its_recovery() -> None:
    first_host, second_host = FakeGateway(), FakeGateway()
    # The preferred host answers in 50 ms (under the read timeout), so the blast is still
    # running when the outage strikes (uvicorn notices a shutdown within 100 ms).
    first_host.chaos([Fault.SLOW], rate=1.0, delay=0.05)
    stop_first = anyio.Event()
    batch = messages(3_000, "-outage")
    done: list[Outcome] = []

    async def run_first(
        port_holder: list[int], task_status: Any = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with serve(first_host, port=port_holder[0]) as url:
            port_holder[0] = int(url.rsplit(":", 1)[1])
            task_status.started(url)
            await stop_first.wait()

    def on_outcome(outcome: Outcome) -> None:
        done.append(outcome)
        if len(done) == 600:
            stop_first.set()  # the preferred host goes away mid-blast

    port = [0]
    async with serve(second_host) as second_url, anyio.create_task_group() as tasks:
        first_url = await tasks.start(run_first, port)
        hosts = [first_url, second_url]
        async with fake_client(first_host, hosts) as isms:
            report = await isms.send_sms_bulk(batch, on_outcome=on_outcome)
            sent = [*first_host.sent, *second_host.sent]
            counts = reconcile(batch, report.outcomes, sent).check()
            assert counts["accepted"] > 2_000
            assert len(second_host.sent) > 500  # the blast went on through the other host
            stop_first = anyio.Event()
            await tasks.start(run_first, port)  # the host comes back on the same port
            await anyio.sleep(0.35)  # its cool-down ends
            before = len(first_host.sent)
            assert (await isms.send_sms("60123456789", "after the outage")).ok
            assert len(first_host.sent) == before + 1  # preferred again
            stop_first.set()


def fake_client(fake: FakeGateway, hosts: list[str]) -> IsmsClient:
    return fake.isms_client(sms_base_urls=hosts, timeout=FAST, retry=RETRY, max_concurrency=6)


async def test_cancellation_storms_on_one_long_lived_client() -> None:
    fake = FakeGateway()
    fake.chaos(rate=0.1, seed=3, delay=0.5)
    rng = random.Random(11)
    async with served(fake) as (url,):
        isms = fake.isms_client(sms_base_urls=[url], timeout=FAST, retry=RETRY, max_concurrency=4)
        async with isms:
            for storm in range(40):
                accounted: list[Outcome] = []
                batch = messages(2_000, f"-storm{storm}")
                read = Counter[str]()

                def lazily(batch: list[Sms] = batch, read: Counter[str] = read) -> Iterator[Sms]:
                    for sms in batch:
                        read["n"] += 1
                        yield sms

                await _cancel_somehow(isms, lazily(), accounted, rng, storm)
                assert sorted(o.index for o in accounted) == list(range(read["n"]))
                reconcile(batch, accounted, fake.sent, read=read["n"]).check()
            fake.clear_faults()
            after = messages(300, "-after")
            report = await isms.send_sms_bulk(after)
            assert report.all_accepted, report.counts
            shards = isms._transport._exchange._shards  # type: ignore[attr-defined]
            pools = [shard.direct for shard in shards]
            assert any(pool.connections for pool in pools), "no keep-alive connection to close"
        assert all(pool.connections == [] for pool in pools), "a connection outlived aclose()"
    assert running_producers() == [], "a stream producer outlived its client"


def running_producers() -> list[str]:
    """Stream producers still running: asyncio tasks, or trio system tasks."""
    if sniffio.current_async_library() == "trio":
        import trio

        root = trio.lowlevel.current_root_task()
        assert root is not None
        names = [task.name for nursery in root.child_nurseries for task in nursery.child_tasks]
    else:
        names = [getattr(task.get_coro(), "__name__", "") for task in asyncio.all_tasks()]
    return [name for name in names if name.endswith("_produce")]


async def _cancel_somehow(
    isms: IsmsClient, batch: Iterator[Sms], accounted: list[Outcome], rng: random.Random, storm: int
) -> None:
    """Cancel a running send at a random moment, a different way each storm."""
    delay = rng.uniform(0.0, 0.15)
    if storm % 3 == 0:
        with anyio.move_on_after(delay):
            await isms.send_sms_bulk(batch, on_outcome=accounted.append)
    elif storm % 3 == 1:
        with contextlib.suppress(TimeoutError), anyio.fail_after(delay):
            async for _ in isms.stream_sms_bulk(batch, on_outcome=accounted.append):
                pass
    else:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: isms.send_sms_bulk(batch, on_outcome=accounted.append))
            await anyio.sleep(delay)
            tasks.cancel_scope.cancel()


@pytest.mark.parametrize(("credits", "password"), [(500, None), (None, "wrong-password")])
async def test_credits_running_out_or_a_failed_login_stop_the_blast(
    credits: int | None, password: str | None
) -> None:
    fake = FakeGateway(isms_credits=credits if credits is not None else 1_000_000)
    async with served(fake) as (url,):
        overrides = {"password": password} if password else {}
        async with fake.isms_client(sms_base_urls=[url], max_concurrency=1, **overrides) as isms:
            batch = messages(2_000, "-fatal")
            report = await isms.send_sms_bulk(batch)
    counts = reconcile(batch, report.outcomes, fake.sent).check()
    assert report.stopped_by is not None
    assert counts["accepted"] == (credits or 0)
    assert counts["not_sent"] >= 2_000 - (credits or 0) - 50


valid_sms = st.builds(
    Sms,
    to=st.from_regex(r"601[0-9]{8}", fullmatch=True),
    text=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=200),
)
invalid_sms = st.one_of(
    st.builds(
        Sms, to=st.sampled_from(["", "0123", "6" * 10_000, "601234x6789", "+"]), text=st.just("x")
    ),
    st.builds(Sms, to=st.just("60123456789"), text=st.sampled_from(["", "x" * 901, "lone \ud800"])),
    st.sampled_from([None, 42, "not an Sms", b"bytes"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.one_of(valid_sms, invalid_sms), max_size=120))
def test_random_mixes_of_valid_and_invalid_input(batch: list[Any]) -> None:
    async def run() -> list[Outcome]:
        fake = FakeGateway()
        async with fake.isms_client() as isms:
            report = await isms.send_sms_bulk(batch)
        recorded = Counter((m.to, m.text) for m in fake.sent)
        for outcome in report.outcomes:
            item = batch[outcome.index]
            if outcome.status is OutcomeStatus.ACCEPTED:
                assert recorded[(outcome.to, item.text)] >= 1
            else:
                assert outcome.status is OutcomeStatus.REJECTED
                assert (outcome.reason or "").startswith(
                    "invalid input"
                ) or outcome.code is not None
        assert len(fake.sent) == report.counts["accepted"]
        return list(report.outcomes)

    outcomes = anyio.run(run)
    assert [o.index for o in outcomes] == list(range(len(batch)))
