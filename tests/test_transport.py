"""The transport's bounds: cool-down that ends, total time, Retry-After beyond the budget."""

from __future__ import annotations

import contextlib

import anyio
import httpx
import pytest

from messaging_async import RetryPolicy, UnreachableError
from messaging_async._exchange import SHARD_SIZE, HttpxExchange, SendFailed, shard_sizes
from messaging_async._transport import SendProgress, Transport, make_timeout

HOSTS = ("https://a.example", "https://b.example")


class Scripted(httpx.AsyncBaseTransport):
    """Refuses connections to hosts in ``down``; answers the rest with ``status``."""

    def __init__(self, down: set[str], status: int = 200, headers: dict[str, str] | None = None):
        self.down = down
        self.status = status
        self.headers = headers or {}
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.host)
        if request.url.host in self.down:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(self.status, headers=self.headers, text="ok")


def transport(scripted: Scripted, **policy: object) -> Transport:
    return Transport(
        retry=RetryPolicy(**policy),  # type: ignore[arg-type]
        timeout=make_timeout(None),
        max_connections=2,
        transport=scripted,
    )


async def post(subject: Transport, *, retry_after_send: bool = True) -> str:
    answer = await subject.post(
        HOSTS, "x.php", content=b"{}", content_type="application/json",
        retry_after_send=retry_after_send, progress=SendProgress(), redact=str,
    )  # fmt: skip
    return answer.base_url


async def test_a_cooled_host_is_used_again_once_its_cool_down_ends() -> None:
    scripted = Scripted(down={"a.example"})
    # Long enough that a loaded machine still makes the second call within it.
    subject = transport(scripted, cooldown=1.0, wait=False)
    assert await post(subject) == "https://b.example"
    assert await post(subject) == "https://b.example"
    assert scripted.calls == ["a.example", "b.example", "b.example"]  # a skipped while cooling
    scripted.down.clear()
    await anyio.sleep(1.05)
    assert await post(subject) == "https://a.example"  # recovered: provider order again
    await subject.aclose()


async def test_total_time_bounds_the_retries() -> None:
    scripted = Scripted(down={"a.example", "b.example"})
    subject = transport(
        scripted, max_attempts=1000, max_elapsed=0.2, backoff_initial=0.05, backoff_max=0.05
    )
    with anyio.fail_after(2):
        with pytest.raises(UnreachableError):
            await post(subject)
    assert 2 <= len(scripted.calls) < 40
    await subject.aclose()


async def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    # A 503 that names a Retry-After throttles: the gateway did not process the request.
    scripted = Scripted(down=set(), status=503, headers={"Retry-After": "3600"})
    subject = transport(scripted, max_elapsed=5.0)
    with anyio.fail_after(2):
        with pytest.raises(UnreachableError, match="HTTP 503"):
            await post(subject)
    assert scripted.calls == ["a.example"]
    await subject.aclose()


async def test_an_injected_transport_is_not_closed_with_the_client() -> None:
    closed = False

    class Owned(Scripted):
        async def aclose(self) -> None:
            nonlocal closed
            closed = True

    subject = transport(Owned(down=set()))
    await post(subject)
    await subject.aclose()
    assert subject.closed
    assert not closed


@pytest.mark.parametrize("connections", [1, 3, 4, 5, 10, 32, 50, 201])
def test_pools_are_small_near_equal_and_hold_every_connection(connections: int) -> None:
    sizes = shard_sizes(connections)
    assert sum(sizes) == connections
    assert max(sizes) <= SHARD_SIZE
    assert max(sizes) - min(sizes) <= 1


class Held(httpx.AsyncBaseTransport):
    """Holds every request until released; records how many it held at once."""

    def __init__(self, release: anyio.Event, fail: bool = False):
        self.release, self.fail = release, fail
        self.now = self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await self.release.wait()
            if self.fail:
                raise httpx.ReadError("reset", request=request)
            return httpx.Response(200, text="ok")
        finally:
            self.now -= 1


async def test_requests_spread_so_no_pool_holds_more_than_its_connections() -> None:
    """With as many requests in flight as there are connections in all, each pool gets at
    most its own size: none ever waits inside httpcore. Failures give their slot back."""
    release = anyio.Event()
    pools = [Held(release), Held(release, fail=True), Held(release)]
    capacities = [4, 3, 3]
    exchange = HttpxExchange(list(zip(pools, capacities, strict=True)), make_timeout(None), True)

    async def post() -> None:
        with contextlib.suppress(SendFailed):
            await exchange.post("https://a.example/x", b"{}", "application/json")

    async with anyio.create_task_group() as tasks:
        for _ in range(sum(capacities)):
            tasks.start_soon(post)
        await anyio.wait_all_tasks_blocked()
        assert [pool.now for pool in pools] == capacities
        release.set()
    assert [pool.most for pool in pools] == capacities
    assert [shard.in_flight for shard in exchange._shards] == [0, 0, 0]


async def test_a_request_cancelled_before_it_starts_is_not_sent_and_gives_its_slot_back() -> None:
    """A free connection slot is taken without yielding, but a cancellation already pending
    must still stop the request before it goes: it is then safely ``not_sent``."""
    scripted = Scripted(down=set())
    subject = transport(scripted)
    progress = SendProgress()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await subject.post(
            HOSTS, "x.php", content=b"{}", content_type="application/json",
            retry_after_send=False, progress=progress, redact=str,
        )  # fmt: skip
    assert scripted.calls == [], "a cancelled request went out"
    assert not progress.may_have_left
    assert subject._shared.lanes.borrowed == 0
    assert await post(subject) == "https://a.example"
    await subject.aclose()
