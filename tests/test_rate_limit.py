"""RateLimit settings, the GCRA bucket and the shared throttle pause, on asyncio and trio.

These run on the event loop's clock with generous bounds; the bounds that are exact by
the algorithm (never more than ``rate * w + burst`` in a window) are asserted exactly.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from messaging_async import RateLimit, ValidationError
from messaging_async._limiter import GcraBucket, Pacer, ThrottlePause


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test of this module runs on asyncio and on trio."""
    return str(request.param)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"messages_per_second": 0}, "messages_per_second"),
        ({"messages_per_second": -5}, "messages_per_second"),
        ({"messages_per_second": float("inf")}, "messages_per_second"),
        ({"messages_per_second": True}, "messages_per_second"),
        ({"messages_per_second": "10"}, "messages_per_second"),
        ({"requests_per_second": 0.0}, "requests_per_second"),
        ({"requests_per_second": float("nan")}, "requests_per_second"),
        ({"messages_per_second": 10, "burst": 0}, "burst"),
        ({"messages_per_second": 10, "burst": 2.5}, "burst"),
        ({"messages_per_second": 10, "burst": True}, "burst"),
        ({}, "messages_per_second"),
    ],
)
def test_rate_limit_refuses_bad_settings_naming_the_field(
    settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        RateLimit(**settings)
    assert caught.value.field == field


def test_rate_limit_is_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        RateLimit(10)  # type: ignore[call-arg]
    limit = RateLimit(messages_per_second=10)
    with pytest.raises(AttributeError):
        limit.burst = 3  # type: ignore[misc]


def test_default_burst_is_a_fifth_of_a_second_and_requests_carry_little_of_it() -> None:
    assert RateLimit(messages_per_second=500).burst_for(500) == 100
    assert RateLimit(messages_per_second=500).max_messages_per_request == 25  # 1/20 s
    assert RateLimit(messages_per_second=2000).max_messages_per_request == 100
    assert RateLimit(messages_per_second=2).max_messages_per_request == 1
    assert RateLimit(messages_per_second=500, burst=7).max_messages_per_request == 3  # half
    assert RateLimit(requests_per_second=5).max_messages_per_request is None


def _max_in_window(grants: list[tuple[float, int]], window: float) -> int:
    """The largest total cost granted in any window of ``window`` seconds."""
    grants = sorted(grants)
    best = total = first = 0
    for at, cost in grants:
        total += cost
        while grants[first][0] <= at - window:
            total -= grants[first][1]
            first += 1
        best = max(best, total)
    return best


async def test_a_shared_bucket_keeps_rate_and_burst_over_many_tasks() -> None:
    rate, burst, cost, duration = 400.0, 80, 40, 1.2

    async def main() -> list[tuple[float, int]]:
        bucket = GcraBucket(rate, burst)
        grants: list[tuple[float, int]] = []

        async def worker() -> None:
            while True:
                await bucket.acquire(cost)
                grants.append((anyio.current_time(), cost))
                await anyio.lowlevel.checkpoint()  # a request would await here

        with anyio.move_on_after(duration):
            async with anyio.create_task_group() as tasks:
                for _ in range(12):
                    tasks.start_soon(worker)
        return grants

    grants = await main()
    granted = sum(cost for _, cost in grants)
    # The bound is exact by the algorithm (a little slack for reading the clock afterwards).
    assert _max_in_window(grants, 0.5) <= rate * 0.5 + burst + 1
    assert granted <= rate * duration + burst + 1
    # No drift: on a loaded machine the loop wakes late, but the burst absorbs it.
    assert granted >= 0.9 * rate * duration


async def test_waiters_are_served_in_arrival_order_and_single_sends_go_first() -> None:
    async def main() -> list[str]:
        bucket = GcraBucket(50.0, 1)
        order: list[str] = []
        # Empty the bucket half a second deep, so bulk-1's turn lasts until everyone below
        # has queued behind it however slowly a loaded machine schedules them (one message
        # deep, it lasted 20 ms, and bulk-2 could be the head when the OTPs came).
        await bucket.acquire(25)

        async def take(name: str, priority: bool) -> None:
            await bucket.acquire(1, priority=priority)
            order.append(name)

        async with anyio.create_task_group() as tasks:
            for name in ("bulk-1", "bulk-2", "bulk-3"):
                tasks.start_soon(take, name, False)
                await anyio.wait_all_tasks_blocked()
            tasks.start_soon(take, "otp-1", True)
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(take, "otp-2", True)
        return order

    # bulk-1's turn had come when the OTPs arrived; they pass the others, in their order.
    assert await main() == ["bulk-1", "otp-1", "otp-2", "bulk-2", "bulk-3"]


async def test_a_cost_above_the_burst_goes_once_the_bucket_is_full() -> None:
    """``rate * w + max(burst, cost)``: a request of more messages than the burst waits for
    a full bucket, then goes (it once waited for ever: ``max(tat, now)`` kept its moment
    ``cost - burst`` intervals ahead of now), and the next waits out its cost."""
    bucket = GcraBucket(50.0, 1)
    with anyio.fail_after(10):
        started = anyio.current_time()
        await bucket.acquire(1)
        await bucket.acquire(25)  # waits for the one message before it: 20 ms
        full_at = anyio.current_time()
        await bucket.acquire(1)  # waits out the 25: half a second
    assert full_at - started >= 0.02 - 0.005
    assert anyio.current_time() - full_at >= 0.5 - 0.005


async def test_a_cancelled_waiter_takes_nothing_and_hands_on_its_turn() -> None:
    async def main_cancel_head() -> tuple[list[str], float]:
        bucket = GcraBucket(20.0, 1)
        order: list[str] = []
        await bucket.acquire(1)
        started = anyio.current_time()

        async def take(name: str, scope: anyio.CancelScope | None = None) -> None:
            if scope is None:
                await bucket.acquire(1)
            else:
                with scope:
                    await bucket.acquire(1)
                    order.append("never")
                return
            order.append(name)

        scope = anyio.CancelScope()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(take, "head", scope)
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(take, "second")
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
        return order, anyio.current_time() - started

    order, elapsed = await main_cancel_head()
    assert order == ["second"]
    # The cancelled head took nothing: the second waited one interval (0.05 s), not two.
    assert elapsed < 0.095


async def test_waiting_sleeps_once_per_turn_rather_than_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    real_sleep_until = anyio.sleep_until

    async def counting_sleep_until(deadline: float) -> None:
        sleeps.append(deadline)
        await real_sleep_until(deadline)

    monkeypatch.setattr(anyio, "sleep_until", counting_sleep_until)

    async def main() -> None:
        bucket = GcraBucket(100.0, 1)
        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(bucket.acquire, 1)

    await main()
    # 19 callers waited; each head slept to its moment (a late wake may need one more).
    assert 19 <= len(sleeps) <= 30


async def test_a_pause_is_extended_never_shortened_and_started_once() -> None:
    async def main() -> tuple[list[bool], list[float], float]:
        pause = ThrottlePause()
        now = anyio.current_time()
        started: list[bool] = []
        ends: list[float] = []
        for deadline in (0.3, 0.1, 0.4):  # then shorter (ignored), then longer
            started.append(pause.extend_until(now + deadline))
            ends.append(round(pause.until - now, 6))
        return started, ends, await pause.wait()

    started, ends, slept = await main()
    assert started == [True, False, False]
    assert ends == [0.3, 0.3, 0.4]
    assert slept >= 0.39


async def test_a_pause_extended_while_tasks_sleep_holds_them_all_to_the_end() -> None:
    async def main() -> list[float]:
        pause = ThrottlePause()
        start = anyio.current_time()
        pause.extend_until(start + 0.2)
        woke: list[float] = []

        async def sender() -> None:
            await pause.wait()
            woke.append(anyio.current_time() - start)

        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(sender)
            await anyio.sleep(0.1)
            pause.extend_until(anyio.current_time() + 0.25)  # a later 429
        return woke

    woke = await main()
    assert len(woke) == 5
    assert min(woke) >= 0.34


async def test_the_gate_holds_bucket_turns_back_until_a_pause_ends() -> None:
    async def main() -> list[float]:
        gate = Pacer(RateLimit(messages_per_second=1000, requests_per_second=1000))
        start = anyio.current_time()
        gate.pause.extend_until(start + 0.25)
        admitted: list[float] = []

        async def send(priority: bool) -> None:
            await gate.wait_turn(10, priority=priority)
            admitted.append(anyio.current_time() - start)

        async with anyio.create_task_group() as tasks:
            for number in range(6):
                tasks.start_soon(send, number % 2 == 0)
        return admitted

    admitted = await main()
    assert len(admitted) == 6
    assert min(admitted) >= 0.24


async def test_a_gate_without_limit_only_waits_for_the_pause() -> None:
    async def main() -> float:
        gate = Pacer(None)
        start = anyio.current_time()
        for _ in range(1000):
            await gate.wait_turn(50)
        gate.pause.extend_until(anyio.current_time() + 0.1)
        await gate.wait_turn(1)
        return anyio.current_time() - start

    assert await main() >= 0.09
