"""The rate limiter and the throttle pause every send of a client goes through.

Why our own: ``aiolimiter`` (and ``asynciolimiter``, ``aiothrottler``) run on asyncio only;
``aiometer`` runs on trio too but paces the tasks of one ``amap`` call, not every caller of
a shared client; the general libraries (``limits``, ``pyrate-limiter``, ``throttled-py``)
answer "may I now?" and leave the waiting, on asyncio, to the caller. None is an anyio
GCRA that callers of one client share, with weights (a request to 50 numbers is 50
messages) and a lane for single sends. The whole algorithm is one number per count.

GCRA (the generic cell rate algorithm) keeps the *theoretical arrival time* ``tat``: the
moment the bucket would be full again. A request of ``cost`` conforms when
``max(tat, now) + cost * interval - burst * interval <= now``; taking it moves ``tat`` by
``cost * interval`` from where it was, never from "now plus an interval", so a long blast
does not drift slower with every late wake-up: lateness is absorbed by the burst.

Waiting is fair and quiet: callers queue in arrival order, only the head of the queue
sleeps (until the moment its request conforms, no polling), and single sends
(``priority``) queue ahead of bulk units that are still waiting, so an OTP waits for at
most the one unit whose turn has come.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import anyio.lowlevel

from .rate import RateLimit

__all__ = ["GcraBucket", "Lanes", "Pacer", "ThrottlePause", "acquire_token"]


def _never() -> float:
    return -math.inf


class _Waiter:
    __slots__ = ("priority", "turn")

    def __init__(self, priority: bool):
        self.priority = priority
        self.turn = anyio.Event()


class GcraBucket:
    """One count (messages or requests) kept at ``rate`` per second with a ``burst``.

    Over any window of ``w`` seconds, the costs taken add up to at most
    ``rate * w + max(burst, cost)``.
    """

    def __init__(self, rate: float, burst: int):
        self._interval = 1.0 / rate
        self._burst = burst
        self._tolerance = burst * self._interval
        self._tat = -math.inf
        self._queue: list[_Waiter] = []

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _ready_at(self, cost: int, now: float) -> float:
        # A cost above the burst conforms once the bucket is full (``tat`` passed), else it
        # never would: ``max(tat, now)`` would stay ``cost - burst`` intervals ahead of now.
        return max(self._tat, now) + min(cost, self._burst) * self._interval - self._tolerance

    def _take(self, cost: int, now: float) -> None:
        self._tat = max(self._tat, now) + cost * self._interval

    async def acquire(
        self, cost: int, *, priority: bool = False, not_before: Callable[[], float] = _never
    ) -> None:
        """Wait until ``cost`` conforms (and ``not_before()`` has passed), then take it.

        A caller cancelled while waiting takes nothing and gives its place to the next.
        """
        now = anyio.current_time()
        if not self._queue and max(self._ready_at(cost, now), not_before()) <= now:
            self._take(cost, now)
            return
        waiter = _Waiter(priority)
        self._enqueue(waiter)
        try:
            if self._queue[0] is not waiter:
                await waiter.turn.wait()
            while True:
                now = anyio.current_time()
                ready = max(self._ready_at(cost, now), not_before())
                if ready <= now:
                    self._take(cost, now)
                    return
                await anyio.sleep_until(ready)
        finally:
            self._leave(waiter)

    def _enqueue(self, waiter: _Waiter) -> None:
        if not waiter.priority:
            self._queue.append(waiter)
            return
        # Behind the head (its turn has come) and other single sends, ahead of bulk units.
        position = next(
            (i for i, other in enumerate(self._queue) if i > 0 and not other.priority),
            len(self._queue),
        )
        self._queue.insert(position, waiter)

    def _leave(self, waiter: _Waiter) -> None:
        was_head = self._queue[0] is waiter
        self._queue.remove(waiter)
        if was_head and self._queue:
            self._queue[0].turn.set()


class ThrottlePause:
    """ "Send nothing until T": one pause shared by every task of a client.

    A later throttling answer can extend the pause, never shorten it, and the pause ends at
    its time, not when some other request happens to finish.
    """

    def __init__(self) -> None:
        self._until = -math.inf

    @property
    def until(self) -> float:
        """The moment (``anyio.current_time()`` clock) the pause ends; in the past if none."""
        return self._until

    @property
    def active(self) -> bool:
        return self._until > anyio.current_time()

    def extend_until(self, deadline: float) -> bool:
        """Pause until ``deadline`` unless already paused longer. True when this starts a
        pause (none was running): the one moment worth telling hooks and logs about."""
        started = not self.active
        if deadline > self._until:
            self._until = deadline
        return started and self.active

    async def wait(self) -> float:
        """Sleep until the pause (with every extension made meanwhile) is over; the seconds
        slept."""
        slept = 0.0
        if self._until == -math.inf:  # never paused: no clock to read (once per request)
            return slept
        while (until := self._until) > (now := anyio.current_time()):
            await anyio.sleep_until(until)
            slept += anyio.current_time() - now
        return slept


class Pacer:
    """What every HTTP attempt of a client passes before it may leave: the throttle pause,
    then the message count (per recipient), then the request count."""

    def __init__(self, rate_limit: RateLimit | None, pause: ThrottlePause | None = None):
        self.rate_limit = rate_limit
        self.pause = pause if pause is not None else ThrottlePause()
        self._messages = _bucket(rate_limit, "messages_per_second")
        self._requests = _bucket(rate_limit, "requests_per_second")

    def _pause_until(self) -> float:
        return self.pause.until

    async def wait_turn(self, messages: int, *, priority: bool = False) -> None:
        """Wait for this request's turn: ``messages`` recipients in one HTTP request."""
        if self._messages is None and self._requests is None:
            await self.pause.wait()
            return
        if self._messages is not None and messages > 0:
            await self._messages.acquire(messages, priority=priority, not_before=self._pause_until)
        if self._requests is not None:
            await self._requests.acquire(1, priority=priority, not_before=self._pause_until)
        else:
            await self.pause.wait()


def _bucket(rate_limit: RateLimit | None, name: str) -> GcraBucket | None:
    rate = None if rate_limit is None else getattr(rate_limit, name)
    if rate_limit is None or rate is None:
        return None
    return GcraBucket(rate, rate_limit.burst_for(rate))


class Lanes:
    """Connection capacity, with a lane for single sends.

    Every request takes a slot of ``total`` (the pool's size: no request ever waits inside
    httpcore, where a cancelled wait leaks a slot, httpcore #1093); bulk requests also take
    one of ``total - single``, so ``single`` slots are always left to single sends, and an
    OTP never queues behind a blast. Single sends may use idle bulk slots too.
    """

    def __init__(self, total: int, single: int):
        self.total = total
        self.single = single
        self._all = anyio.CapacityLimiter(total)
        self._bulk = anyio.CapacityLimiter(total - single) if single else None

    @property
    def borrowed(self) -> int:
        """Slots in use, in both lanes."""
        return int(self._all.borrowed_tokens)

    async def acquire(self, single: bool) -> None:
        bulk = None if single else self._bulk
        if bulk is not None:
            await acquire_token(bulk)
        try:
            await acquire_token(self._all)
        except BaseException:
            if bulk is not None:
                bulk.release()
            raise

    def release(self, single: bool) -> None:
        self._all.release()
        if not single and self._bulk is not None:
            self._bulk.release()


async def acquire_token(limiter: anyio.CapacityLimiter) -> None:
    """``limiter.acquire()``, without its two scheduler round trips when a token is free.

    A cancellation already pending is still raised here, before anything is sent, so the
    request is honestly ``not_sent`` rather than maybe sent.
    """
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()
    else:
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            limiter.release()
            raise
