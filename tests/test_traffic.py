"""Production traffic against the sandbox on a real socket: the rate limit as the gateway
sees it, one shared pause for a throttling answer, proxies, per-client options, hooks."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import trio
import trustme
from trio.testing import MockClock

from messaging_async import (
    BulkReport,
    IsmsClient,
    MessagingError,
    OutcomeStatus,
    OutcomeUnknownError,
    RateLimit,
    RetryPolicy,
    Sms,
    SmsComMyClient,
    UnreachableError,
)
from messaging_async._call import SINGLE_SEND_TIMEOUT
from messaging_async.hooks import (
    AttemptEvent,
    BaseHooks,
    OutcomeEvent,
    RetryEvent,
    ThrottleEvent,
)
from messaging_async.testing import SANDBOX_PASSWORD, SANDBOX_USERNAME, FakeGateway, Fault

from .gateway import refused_base_url
from .proxy import LoopbackProxy, running_proxy, running_tls_front
from .test_sandbox_cli import SCRIPT as SANDBOX_SCRIPT
from .test_sandbox_cli import running_sandbox

Sandbox = tuple[FakeGateway, str]


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test of this module runs on asyncio and on trio."""
    return str(request.param)


@pytest.fixture
def proxy() -> Iterator[LoopbackProxy]:
    with running_proxy() as running:
        yield running


class Recorder(BaseHooks):
    def __init__(self, clock: Any = None) -> None:
        self.attempts: list[AttemptEvent] = []
        self.outcomes: list[OutcomeEvent] = []
        self.throttles: list[tuple[float, ThrottleEvent]] = []
        self._clock = clock

    def on_attempt(self, event: AttemptEvent) -> None:
        self.attempts.append(event)

    def on_outcome(self, event: OutcomeEvent) -> None:
        self.outcomes.append(event)

    def on_throttle(self, event: ThrottleEvent) -> None:
        self.throttles.append((self._clock() if self._clock else 0.0, event))


def messages(count: int, tag: str = "") -> list[Sms]:
    return [Sms(to=f"6012{i:07d}", text=f"Hello {tag}{i}") for i in range(count)]


def busiest_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = first = 0
    for last, at in enumerate(times):
        while times[first] <= at - window:
            first += 1
        best = max(best, last - first + 1)
    return best


@pytest.mark.parametrize("answer_after", [0.2, 2.0])
def test_a_rate_limited_blast_keeps_the_rate_as_the_gateway_counts_it(
    answer_after: float,
) -> None:
    """Counted by the gateway's receive times, on trio's mock clock: time moves only when
    every task waits, so the receive times are exactly when the client let each request
    go, and the bounds hold exactly, however loaded the machine (on real time, a gateway
    process waiting for a core bunched its receive times or spread them out, and failed
    either bound). Answers take ``answer_after`` seconds, as over a network: at 2 s the
    connection slots run out, and requests the limiter let go wait for one; they must not
    then leave in a bunch."""
    rate, seconds = 500, 3
    limit = RateLimit(messages_per_second=rate)
    burst = limit.burst_for(rate)

    async def blast() -> tuple[FakeGateway, BulkReport]:
        fake = FakeGateway(clock=trio.current_time)
        fake.inject(Fault.SLOW, times=None, delay=answer_after)  # processed, answered later
        async with fake.isms_client(rate_limit=limit, max_concurrency=20) as client:
            return fake, await client.send_sms_bulk(messages(rate * seconds))

    clock = MockClock(autojump_threshold=0)
    fake, report = anyio.run(blast, backend="trio", backend_options={"clock": clock})
    assert report.all_accepted
    received = [message.at for message in fake.sent]
    assert len(received) == rate * seconds
    assert busiest_window(received, 1.0) <= rate + burst  # never above the limit
    if answer_after < 1.0:  # slots to spare: a limiter that over-throttles fails here
        span = max(received) - min(received)
        assert (len(received) - burst) / span >= 0.99 * rate


async def test_a_rate_limited_blast_is_held_back_as_a_gateway_process_sees_it() -> None:
    """The same limiter against the sandbox in a process of its own, over a real socket, as
    a gateway is. Only what a loaded machine cannot fake is asserted: the receive times can
    bunch or spread when either process waits for a core (the exact bounds are the
    mock-clock test's above), but they cannot make 1,500 messages at 500 a second arrive in
    well under their 3 seconds; without the limiter they arrive in a fraction of one."""
    argv = [str(SANDBOX_SCRIPT), "sandbox", "--port", "0"]
    with running_sandbox(argv) as (_, url, _):
        rate, seconds = 500, 3
        limit = RateLimit(messages_per_second=rate)
        client = IsmsClient(
            username=SANDBOX_USERNAME,
            password=SANDBOX_PASSWORD,
            base_url=url,
            rate_limit=limit,
            max_concurrency=20,
        )
        async with client:
            report = await client.send_sms_bulk(messages(rate * seconds))
        async with httpx.AsyncClient() as control:
            sent = (await control.get(f"{url}/_sandbox/sent")).json()["sent"]
    assert report.all_accepted
    received = sorted(float(message["at"]) for message in sent)
    assert len(received) == rate * seconds
    ideal = (len(received) - limit.burst_for(rate)) / rate
    assert max(received) - min(received) >= 0.5 * ideal


async def test_a_throttling_answer_pauses_every_task_once_and_loses_nobody(
    sandbox: Sandbox,
) -> None:
    fake, url = sandbox
    concurrency = 5
    fake.inject(Fault.THROTTLED, endpoint="isms_send_json.php", times=concurrency, delay=1)
    hooks = Recorder(clock=fake.now)
    retry = RetryPolicy(backoff_initial=0.01, backoff_max=0.05, max_elapsed=30)
    settings = {"retry": retry, "hooks": hooks, "max_concurrency": concurrency}
    async with fake.isms_client(base_url=url, **settings) as client:
        report = await client.send_sms_bulk(messages(50 * concurrency * 2))
    assert fake.faults_applied["throttled"] == concurrency
    assert len(hooks.throttles) == 1  # one shared pause, not one per task
    paused_at, event = hooks.throttles[0]
    assert (event.status, event.pause) == (429, 1.0)
    # Every recipient: one outcome, accepted, recorded once by the gateway.
    assert len(report.outcomes) == 50 * concurrency * 2
    assert report.all_accepted
    assert Counter(m.to for m in fake.sent) == Counter(o.to for o in report.outcomes)
    assert set(Counter(m.to for m in fake.sent).values()) == {1}
    # Nothing reached the gateway during the pause (a little slack for requests that were
    # already on their way when the first 429 was read).
    during = [m.at for m in fake.sent if paused_at + 0.2 < m.at < paused_at + 0.95]
    assert during == []
    assert max(m.at for m in fake.sent) >= paused_at + 0.95


async def test_a_throttled_single_send_goes_again_after_the_pause(sandbox: Sandbox) -> None:
    fake, url = sandbox
    fake.inject(Fault.THROTTLED, endpoint="isms_send_json.php", times=1, delay=1)
    retry = RetryPolicy(backoff_initial=0.01, max_elapsed=30)
    async with fake.isms_client(base_url=url, retry=retry) as client:
        started = anyio.current_time()
        outcome = await client.send_sms("60123456789", "Your code is 1234")
        waited = anyio.current_time() - started
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert waited >= 0.95
    assert len(fake.sent) == 1


async def test_with_one_base_url_the_log_never_speaks_of_the_next_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = refused_base_url()
    client = IsmsClient(
        username="user", password="placeholder-password", base_url=down, retry=RetryPolicy.no_wait()
    )
    with caplog.at_level(logging.INFO, logger="messaging_async"):
        async with client:
            with pytest.raises(UnreachableError):
                await client.get_balance()
    assert "not sent" in caplog.text
    assert "next base URL" not in caplog.text
    caplog.clear()
    two = IsmsClient(
        username="u",
        password="p",
        sms_base_urls=[down, refused_base_url()],
        retry=RetryPolicy.no_wait(max_attempts=2),
    )
    with caplog.at_level(logging.INFO, logger="messaging_async"):
        async with two:
            with pytest.raises(UnreachableError):
                await two.get_balance()
    assert caplog.text.count("trying the next base URL") == 1


async def test_with_options_shares_the_connections_and_the_pause(sandbox: Sandbox) -> None:
    fake, url = sandbox
    async with fake.isms_client(base_url=url) as client:
        quick = client.with_options(timeout=2, retry=RetryPolicy.no_wait(max_attempts=1))
        limited = client.with_options(rate_limit=RateLimit(requests_per_second=50))
        assert quick._transport._exchange is client._transport._exchange
        assert limited._transport._shared.pause is client._transport._shared.pause
        assert limited._transport.rate_limit == RateLimit(requests_per_second=50)
        assert client._transport.rate_limit is None
        assert quick._retry.max_attempts == 1
        assert client._retry.max_attempts == RetryPolicy.no_wait().max_attempts
        await quick.send_sms("60123456789", "one")
        await quick.aclose()  # the copy's close leaves the original's pool open
        await client.send_sms("60123456780", "two")
    with pytest.raises(MessagingError, match="closed"):
        await limited.send_sms("60123456781", "three")
    assert len(fake.sent) == 2


async def test_settings_come_from_the_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = sandbox
    for name, value in {
        "ISMS_USERNAME": fake.username,
        "ISMS_PASSWORD": fake.password,
        "ISMS_APP_ID": fake.app_id,
        "ISMS_APP_SECRET": fake.app_secret,
        "ISMS_WABA_NUMBER": fake.waba_number,
        "ISMS_BASE_URL": url,
        "SMSCOMMY_USERNAME": fake.username,
        "SMSCOMMY_PASSWORD": fake.password,
        "SMSCOMMY_BASE_URL": f"{url}/websmsapi",
    }.items():
        monkeypatch.setenv(name, value)
    async with IsmsClient(sender_id="MyCo", retry=RetryPolicy.no_wait()) as isms:
        await isms.send_sms("60123456789", "from the environment")
        assert isms._whatsapp_settings is not None  # app id, secret and number read too
    async with SmsComMyClient(sender_id="MyCo", retry=RetryPolicy.no_wait()) as smscommy:
        await smscommy.send_sms("60123456788", "from the environment too")
    assert [m.gateway for m in fake.sent] == ["isms", "smscommy"]
    assert fake.sent[1].sender == "MyCo"


def test_an_explicit_setting_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISMS_USERNAME", "from-env")
    monkeypatch.setenv("ISMS_BASE_URL", "https://env.example")
    client = IsmsClient(username="given", password="p", base_url="https://given.example")
    assert client._username == "given"
    assert client._sms_base_urls == ("https://given.example",)
    assert client._waba_base_urls == ("https://given.example",)


@pytest.mark.parametrize("http_backend", ["httpx", "aiohttp"])
async def test_requests_go_through_the_proxy_given(
    sandbox: Sandbox, proxy: LoopbackProxy, http_backend: str, anyio_backend: str
) -> None:
    if http_backend == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    fake, url = sandbox
    async with fake.isms_client(base_url=url, proxy=proxy.url, http_backend=http_backend) as c:
        await c.send_sms("60123456789", "through the proxy")
        await c.get_balance()
    assert proxy.requests == [
        f"POST {url}/isms_send_json.php",
        f"POST {url}/isms_balance_json.php",
    ]
    assert len(fake.sent) == 1


@pytest.mark.parametrize("http_backend", ["httpx", "aiohttp"])
async def test_trust_env_reads_the_proxy_and_no_proxy_from_the_environment(
    sandbox: Sandbox,
    proxy: LoopbackProxy,
    http_backend: str,
    anyio_backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if http_backend == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    fake, url = sandbox
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings: dict[str, Any] = {"base_url": url, "http_backend": http_backend}
    async with fake.isms_client(**settings) as untrusting:  # trust_env=False: direct
        await untrusting.get_balance()
    assert proxy.requests == []
    async with fake.isms_client(**settings, trust_env=True) as trusting:
        await trusting.get_balance()
    assert proxy.requests == [f"POST {url}/isms_balance_json.php"]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with fake.isms_client(**settings, trust_env=True) as bypassing:
        await bypassing.get_balance()
    assert len(proxy.requests) == 1


async def test_hooks_hear_every_attempt_without_texts_or_numbers(
    sandbox: Sandbox,
) -> None:
    fake, url = sandbox
    hooks = Recorder()
    async with fake.isms_client(base_url=url, hooks=hooks) as client:
        await client.send_sms_bulk(messages(3, tag="secret-text-"))
        await client.send_sms("60199999999", "Your OTP is 424242")
    host = url.removeprefix("http://")
    assert [(a.gateway, a.host, a.endpoint, a.status, a.messages) for a in hooks.attempts] == [
        ("isms", host, "isms_send_json.php", 200, 3),
        ("isms", host, "isms_send_json.php", 200, 1),
    ]
    everything = repr(hooks.attempts) + repr(hooks.outcomes)
    for secret in ("secret-text", "424242", "60199999999", "6012000000", fake.password):
        assert secret not in everything


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_sandbox(sandbox: Sandbox, authority: trustme.CA) -> Iterator[tuple[FakeGateway, str]]:
    """The sandbox behind TLS, with a certificate for 127.0.0.1 from ``authority``."""
    fake, url = sandbox
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with running_tls_front(url, context) as https_url:
        yield fake, https_url


def http_backends(anyio_backend: str) -> list[str]:
    return ["httpx", "aiohttp"] if anyio_backend == "asyncio" else ["httpx"]


async def test_verify_takes_a_ca_bundle_or_a_context_and_checks_by_default(
    https_sandbox: Sandbox, authority: trustme.CA, tmp_path: Any, anyio_backend: str
) -> None:
    fake, url = https_sandbox
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    for http_backend in http_backends(anyio_backend):
        for verify in (str(bundle), context):
            async with fake.isms_client(
                base_url=url, verify=verify, http_backend=http_backend
            ) as c:
                await c.send_sms("60123456789", "over TLS")
        hooks = Recorder()
        settings: dict[str, Any] = {"base_url": url, "http_backend": http_backend, "hooks": hooks}
        async with fake.isms_client(**settings) as checking:  # system CAs: ours is unknown
            with pytest.raises(UnreachableError):
                await checking.send_sms("60123456789", "never sent")
        assert {attempt.failure for attempt in hooks.attempts} == {"tls"}
    assert len(fake.sent) == 2 * len(http_backends(anyio_backend))


async def test_an_https_gateway_is_reached_through_the_proxy_by_connect(
    https_sandbox: Sandbox, proxy: LoopbackProxy, authority: trustme.CA, anyio_backend: str
) -> None:
    fake, url = https_sandbox
    context = ssl.create_default_context()
    authority.configure_trust(context)
    for http_backend in http_backends(anyio_backend):
        settings: dict[str, Any] = {
            "proxy": proxy.url,
            "verify": context,
            "http_backend": http_backend,
        }
        async with fake.isms_client(base_url=url, **settings) as client:
            await client.send_sms("60123456789", "tunnelled")
    authority_part = url.removeprefix("https://")
    assert proxy.requests == [f"CONNECT {authority_part}"] * len(http_backends(anyio_backend))
    assert len(fake.sent) == len(http_backends(anyio_backend))


class Hanging:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"


class Trickling:
    """A loopback server that reads a request, then answers one header line every 0.2 s:
    each byte resets a read timeout, so only a bound on the whole exchange ends it."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            connection, _ = self.socket.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stop.wait(0.2):
                    connection.sendall(b"X-Wait: 1\r\n")


@pytest.fixture
def trickling() -> Iterator[Trickling]:
    server = Trickling()
    yield server
    server.stop.set()
    server.socket.close()
    server.thread.join(5)


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    server = Hanging()
    yield server
    server.socket.close()


async def test_a_gateway_that_is_down_fails_an_otp_within_the_call_timeout(
    hanging: Hanging,
) -> None:
    refusing = IsmsClient(
        username="user", password="placeholder-password", base_url=refused_base_url()
    )
    silent = IsmsClient(username="user", password="placeholder-password", base_url=hanging.url)
    async with refusing, silent:
        started = anyio.current_time()
        with pytest.raises(UnreachableError):  # refused: retried while the call has time
            await refusing.send_sms("60123456789", "Your OTP is 1234", timeout=1)
        assert anyio.current_time() - started < 2
        started = anyio.current_time()
        with pytest.raises(OutcomeUnknownError):  # sent, never answered: the read is cut short
            await silent.send_sms("60123456789", "Your OTP is 1234", timeout=1)
        assert anyio.current_time() - started < 2


async def test_an_answer_trickling_in_is_cut_at_the_call_timeout(trickling: Trickling) -> None:
    slow = IsmsClient(username="user", password="placeholder-password", base_url=trickling.url)
    async with slow:
        started = anyio.current_time()
        with anyio.fail_after(5), pytest.raises(OutcomeUnknownError, match="call's timeout"):
            await slow.send_sms("60123456789", "Your OTP is 1234", timeout=1)
        assert anyio.current_time() - started < 2


async def test_by_default_an_otp_gives_up_on_a_gateway_that_is_down_in_seconds() -> None:
    down = [refused_base_url(), refused_base_url()]
    async with IsmsClient(
        username="user", password="placeholder-password", sms_base_urls=down
    ) as client:
        started = anyio.current_time()
        with pytest.raises(UnreachableError):
            await client.send_sms("60123456789", "Your OTP is 1234")
        waited = anyio.current_time() - started
    assert waited < SINGLE_SEND_TIMEOUT + 1


async def test_a_single_send_does_not_queue_behind_a_running_blast(sandbox: Sandbox) -> None:
    fake, url = sandbox
    delay = 1.0
    fake.inject(Fault.SLOW, endpoint="isms_send_json.php", times=None, delay=delay)
    # Five connections: four for bulk requests, one kept for single sends.
    settings = {"max_concurrency": 4, "max_whatsapp_concurrency": 4, "max_connections": 5}
    client = fake.isms_client(base_url=url, single_send_capacity=1, **settings)
    async with client, anyio.create_task_group() as tasks:
        tasks.start_soon(client.send_sms_bulk, messages(50 * 4 * 3))
        await anyio.wait_all_tasks_blocked()  # the blast's requests are out
        assert client._transport._shared.lanes.borrowed == 4  # its lane is full
        await client.send_sms("60199999999", "Your OTP is 9999")
    # By the gateway's clock: the OTP arrived while the blast's first requests were still
    # waiting for their answers, not after one of them came back.
    first_bulk = min(m.at for m in fake.sent if m.to != "60199999999")
    (otp,) = fake.sent_to("60199999999")
    assert otp.at - first_bulk < delay * 0.8


async def test_hooks_hear_one_outcome_per_recipient_bulk_stream_and_single(
    sandbox: Sandbox,
) -> None:
    fake, url = sandbox
    hooks = Recorder()
    fake.inject(Fault.CODE, endpoint="isms_send_json.php", code=-1008, times=1)
    async with fake.isms_client(base_url=url, hooks=hooks) as client:
        with pytest.raises(MessagingError):
            await client.send_sms("60199999990", "refused")
        await client.send_sms_bulk(messages(3))
        streamed = [o async for o in client.stream_sms_bulk(messages(2, tag="s"))]
        await client.send_sms("60199999999", "Your OTP is 424242")
    assert len(streamed) == 2
    statuses = Counter((o.gateway, o.status) for o in hooks.outcomes)
    assert statuses == {("isms", "accepted"): 6, ("isms", "rejected"): 1}


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_bulk_call_timeout_leaves_what_has_not_left_not_sent(
    sandbox: Sandbox, streamed: bool
) -> None:
    fake, url = sandbox
    fake.inject(Fault.SLOW, endpoint="isms_send_json.php", times=None, delay=0.4)
    async with fake.isms_client(base_url=url, max_concurrency=1) as client:
        started = anyio.current_time()
        if streamed:  # the stream's producer runs in a task of its own: the deadline follows
            outcomes = [o async for o in client.stream_sms_bulk(messages(600), timeout=1)]
        else:
            outcomes = list((await client.send_sms_bulk(messages(600), timeout=1)).outcomes)
        elapsed = anyio.current_time() - started
    counts = Counter(outcome.status for outcome in outcomes)
    assert len(outcomes) == 600
    assert counts[OutcomeStatus.ACCEPTED] >= 50
    assert counts[OutcomeStatus.NOT_SENT] >= 50
    assert set(counts) <= {OutcomeStatus.ACCEPTED, OutcomeStatus.NOT_SENT, OutcomeStatus.UNKNOWN}
    # Unbounded, the 12 requests of 50 would take 4.8 s; the slack is for a loaded machine.
    assert elapsed < 3


async def test_hooks_hear_failovers_and_retries_on_both_clients(sandbox: Sandbox) -> None:
    fake, url = sandbox
    down = refused_base_url()
    events: list[tuple[str, str, str, str]] = []

    class Retries(BaseHooks):
        def on_retry(self, event: RetryEvent) -> None:
            events.append((event.gateway, event.kind, event.reason, event.host))

    hooks = Retries()
    urls = [down, url]
    async with fake.isms_client(sms_base_urls=urls, hooks=hooks) as isms:
        await isms.get_balance()  # refused on the first URL: the next one at once
    fake.inject(Fault.SERVER_ERROR, endpoint="creditsLeft.aspx", times=1)
    async with fake.smscommy_client(base_url=url, hooks=hooks) as smscommy:
        await smscommy.get_credits()  # a 502 page: a look-up is retried
    assert events == [
        ("isms", "failover", "connect", down.removeprefix("http://")),
        ("smscommy", "retry", "http_502", url.removeprefix("http://")),
    ]
