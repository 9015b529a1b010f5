"""The receiver's cheaper deadlines and its one-pass query reading (issue 17).

``step_within`` (here mostly through ``run_within``, which keeps the value) arms a
handler's (or a body read's) deadline only once the coroutine suspends; these tests hold
it to what ``anyio.move_on_after`` promised, on both backends.
The one-pass query reading must decide 401 exactly as the lenient token reading does.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import inspect
import json
import time
import types
from collections.abc import Awaitable, Generator
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging_async import WebhookReceiver
from messaging_async.webhooks import _deadline
from messaging_async.webhooks import receiver as _receiver
from messaging_async.webhooks._deadline import _Resumed, step_within
from messaging_async.webhooks._deadline import on_asyncio as _deadline_on_asyncio
from messaging_async.webhooks._token import query_if_token_matches

SECRET = "a-long-shared-secret-0123456789"


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


async def test_a_coroutine_that_never_suspends_finishes_even_past_its_deadline() -> None:
    async def quick() -> int:
        return 42

    assert await run_within(quick(), 0.001, time.perf_counter() - 10) == (True, 42)


async def run_within(coro: Any, seconds: float | None, started: float) -> tuple[bool, Any]:
    """``step_within``, its value kept (as ``read_body`` keeps the body): (True, the
    value) or (False, None) at the deadline."""
    kept: list[Any] = []

    async def keeping() -> None:
        kept.append(await coro)

    rest = step_within(keeping(), seconds, started)
    finished = True if rest is None else (await rest)[0]
    return (True, kept[0]) if finished else (False, None)


async def _finished(rest: Awaitable[tuple[bool, object]] | None) -> tuple[bool, object] | None:
    return None if rest is None else await rest


async def test_step_within_runs_a_coroutine_that_never_suspends_to_its_end_at_once(
    anyio_backend: str,
) -> None:
    """On asyncio a handler that does not wait finishes in ``step_within`` itself: nothing
    to await, nothing raised by its return (a value or none), even past its deadline. On
    trio the scope is entered first, so there is always the rest to await."""
    ran: list[int] = []

    async def quick(value: int) -> int:
        ran.append(value)
        return value

    for value, seconds in ((1, 0.001), (2, None)):
        rest = step_within(quick(value), seconds, time.perf_counter() - 10)
        if anyio_backend == "asyncio" or seconds is None:
            assert rest is None
        else:
            assert rest is not None
            assert await rest == (True, value)
    assert ran == [1, 2]


async def test_step_within_hands_back_the_rest_of_a_coroutine_that_waits() -> None:
    cleaned: list[bool] = []

    async def slow() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.append(True)

    async def works() -> int:
        await anyio.sleep(0)  # noqa: ASYNC115 - on asyncio a bare yield: None is no end
        await anyio.lowlevel.checkpoint()
        return 42

    with anyio.fail_after(20):
        rest = step_within(slow(), 0.2, time.perf_counter())
        assert rest is not None
        assert await rest == (False, None)
        assert cleaned == [True]
        for seconds in (20.0, None):
            rest = step_within(works(), seconds, time.perf_counter())
            assert rest is not None
            assert await rest == (True, 42)


async def test_step_within_lets_exceptions_leave_from_the_first_step_and_after() -> None:
    async def fails_at_once() -> None:
        raise KeyError("first")

    async def fails_after_a_wait() -> None:
        await anyio.sleep(0)  # noqa: ASYNC115 - on asyncio a bare yield: None is no end
        raise KeyError("later")

    with pytest.raises(KeyError, match="first"):  # on trio, from the scope's first step
        await _finished(step_within(fails_at_once(), 20, time.perf_counter()))
    rest = step_within(fails_after_a_wait(), 20, time.perf_counter())
    assert rest is not None
    with pytest.raises(KeyError, match="later"):
        await rest


async def test_a_coroutine_that_waits_past_its_deadline_is_cancelled() -> None:
    cleaned: list[bool] = []

    async def slow() -> int:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.append(True)
        return 1  # pragma: no cover - never reached

    with anyio.fail_after(20):
        assert await run_within(slow(), 0.2, time.perf_counter()) == (False, None)
    assert cleaned == [True]


async def test_the_deadline_counts_from_the_call_not_from_the_first_suspension() -> None:
    """A first step that took (here: is said to have started) 10 s ago leaves no time."""

    async def waits_a_second() -> int:
        await anyio.sleep(1)
        return 1

    started = time.perf_counter() - 10
    with anyio.fail_after(20):
        assert await run_within(waits_a_second(), 5, started) == (False, None)


async def test_values_and_results_pass_through_the_suspensions() -> None:
    async def works() -> int:
        await anyio.lowlevel.checkpoint()
        value: int = await anyio.to_thread.run_sync(lambda: 7)
        await anyio.sleep(0.01)
        return value * 6

    assert await run_within(works(), 20, time.perf_counter()) == (True, 42)


async def test_scopes_and_task_groups_the_coroutine_opens_nest_inside_the_deadline() -> None:
    """Its first step opens a cancel scope and a task group and suspends in them: the
    deadline's scope was entered first, so nothing is out of order when it fires."""

    async def nested() -> None:
        with anyio.CancelScope():
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(anyio.sleep_forever)
                await anyio.sleep_forever()

    with anyio.fail_after(20):
        assert await run_within(nested(), 0.2, time.perf_counter()) == (False, None)


async def test_exceptions_leave_from_the_first_step_and_after_a_suspension() -> None:
    async def at_once() -> None:
        raise KeyError("first")

    async def later() -> None:
        await anyio.lowlevel.checkpoint()
        raise KeyError("later")

    for coro in (at_once(), later()):
        with pytest.raises(KeyError):
            await run_within(coro, 20, time.perf_counter())


def test_a_coroutine_that_raises_leaves_no_deadline_behind() -> None:
    """After the coroutine raised, its deadline must not fire into whatever runs next (on
    a bare asyncio loop, where nothing else would absorb a stray cancellation)."""

    async def fails_after_a_wait() -> None:
        await asyncio.sleep(0.01)
        raise KeyError("after a wait")

    async def main() -> str:
        with pytest.raises(KeyError):  # a 10 ms wait: 1 s is ample, even on a loaded machine
            await run_within(fails_after_a_wait(), 1, time.perf_counter())
        await asyncio.sleep(1.2)  # past the deadline: not cancelled
        return "not cancelled"

    assert asyncio.run(main()) == "not cancelled"


def test_a_coroutine_that_swallows_the_cancellation_is_cancelled_again() -> None:
    """As with anyio's scopes, the deadline stays in force: the next wait is cut off too.
    On a bare asyncio loop: anyio's test runner would deliver the cancellation again."""
    waits: list[str] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            waits.append("swallowed")
        await asyncio.sleep(1)  # would end, were it not cut off
        waits.append("slept")

    async def main() -> tuple[bool, None]:
        return await run_within(stubborn(), 0.2, time.perf_counter())

    assert asyncio.run(main()) == (False, None)
    assert waits == ["swallowed"]


def test_a_cancellation_from_outside_is_never_taken_for_the_deadline() -> None:
    """A server cancelling the request (its shutdown) must see its cancellation rather
    than a handler that timed out: before the deadline, and when both arrive together."""

    async def waits() -> None:
        await asyncio.sleep(30)

    async def cancelled_as_it_times_out() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # the server's, arriving with the deadline's
            raise

    async def main(handler: Any, seconds: float, outside: bool) -> None:
        task = asyncio.current_task()
        assert task is not None
        if outside:
            asyncio.get_running_loop().call_later(0.1, task.cancel)
        try:
            await run_within(handler(), seconds, time.perf_counter())
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("not cancelled")

    for handler, seconds, outside in ((waits, 20, True), (cancelled_as_it_times_out, 0.1, False)):
        seen: list[str] = []
        with pytest.raises(asyncio.CancelledError):  # the server's cancellation stands
            asyncio.run(main(handler, seconds, outside))
        assert seen == ["cancelled"], handler


async def test_a_cancellation_from_outside_reaches_the_coroutine_and_propagates() -> None:
    reached: list[str] = []

    async def waits() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            reached.append("cancelled")
            raise

    with anyio.move_on_after(0.2) as outer:
        await run_within(waits(), 20, time.perf_counter())
    assert outer.cancelled_caught
    assert reached == ["cancelled"]


async def test_a_handler_that_opens_a_task_group_is_still_cut_off_with_503() -> None:
    async def on_delivery(report: Any) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(anyio.sleep_forever)

    app = WebhookReceiver(secret=SECRET, on_delivery=on_delivery, handler_timeout=0.2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks.test") as client:
        with anyio.fail_after(20):
            answer = await client.get(f"/smscommy/delivery?token={SECRET}&MsgId=1&Status=6")
    assert answer.status_code == 503


@types.coroutine
def trap(log: list[object]) -> Generator[str, object, str]:
    """What an event loop's primitives look like from inside: yield, get an answer."""
    try:
        log.append((yield "first wait"))
        log.append((yield "second wait"))
    except KeyError:
        return "caught"
    except GeneratorExit:
        log.append("closed")
        raise
    return "done"


KEPT: list[object] = []  # the coroutines, so that only an explicit close closes them


def resumed(log: list[object]) -> Generator[Any, Any, Any]:
    """A coroutine run to its first suspension, then continued through ``_Resumed``."""

    async def handler() -> str:
        return await trap(log)

    coro = handler()
    KEPT.append(coro)
    first = coro.send(None)
    awaiting = _Resumed(coro, first, None).__await__()
    assert next(awaiting) == "first wait"
    return awaiting


def test_resuming_hands_the_loops_answers_throws_and_closing_to_the_coroutine() -> None:
    """The loop's side of ``await``: what it sends, throws in, or closes, reaches the
    coroutine exactly as if it had been awaited directly."""
    log: list[object] = []
    sent = resumed(log)
    assert sent.send("answer 1") == "second wait"
    with pytest.raises(StopIteration) as finished:
        sent.send("answer 2")
    assert (finished.value.value, log) == ("done", ["answer 1", "answer 2"])

    thrown = resumed(log := [])
    with pytest.raises(StopIteration) as caught:
        thrown.throw(KeyError("from the loop"))
    assert caught.value.value == "caught"

    closed = resumed(log := [])
    closed.close()
    assert log == ["closed"]
    KEPT.clear()


# ---------------------------------------------------------------- the token, read once
def lenient_match(query: bytes) -> bool:
    """The receiver's original token test: every field read with ``unquote_to_bytes``."""
    tokens = []
    for field in query.split(b"&"):
        name, _, value = field.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) == b"token":
            tokens.append(unquote_to_bytes(value.replace(b"+", b" ")))
    return hmac.compare_digest(tokens[0] if len(tokens) == 1 else b"", SECRET.encode())


PIECES = [
    f"token={SECRET}",
    "%74oken=" + SECRET.replace("-", "%2D"),
    "tok%65n=" + SECRET.replace("-", "%2d"),
    "token=wrong",
    "token=",
    "token",
    "to+ken=x",
    "MsgId=1",
    "Status=6",
    "x=%ZZ",
    "y=%FF",
    "z=%C3%A9",
    "w=a+b",
    "",
    "=",
    "token=%",
]


@given(st.lists(st.sampled_from(PIECES), max_size=5), st.booleans())
def test_the_one_pass_reading_refuses_exactly_what_the_lenient_reading_refuses(
    pieces: list[str], latin: bool
) -> None:
    query = "&".join(pieces).encode()
    if latin:
        query += b"&v=\xe9"  # not UTF-8: the strict reading fails, the token is read leniently
    read = query_if_token_matches(query, "token", SECRET.encode())
    assert (read is not None) == lenient_match(query), query
    if isinstance(read, dict):
        assert "token" not in read


# ---------------------------------------------------------------- fourth pass (issue 17)
WHATSAPP_FORM = b"response=" + base64.b64encode(
    json.dumps({"from": "60123456789", "messageId": "wamid.1", "text": {"body": "hi"}}).encode()
)


async def whatsapp_post(app: Any, receive: Any) -> int:
    """The status ``app`` answers a WhatsApp form POST whose body ``receive`` hands over."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/isms/whatsapp",
        "root_path": "",
        "query_string": f"token={SECRET}".encode(),
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }
    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize("body_waits", [False, True])
async def test_a_post_whose_handler_hangs_is_cut_off_after_its_body_on_both_backends(
    body_waits: bool,
) -> None:
    """The body read's ``on_asyncio`` answer is the handler's too: on trio both still run
    inside their scopes, on asyncio both armed on suspension; a body that waits first (the
    rest of the answer then comes from a coroutine) changes nothing."""
    handled: list[object] = []

    async def on_whatsapp(message: Any) -> None:
        handled.append(message.message_id)
        await anyio.sleep_forever()

    async def receive() -> dict[str, Any]:
        if body_waits:
            await anyio.sleep(0.01)
        return {"type": "http.request", "body": WHATSAPP_FORM, "more_body": False}

    app = WebhookReceiver(secret=SECRET, on_whatsapp=on_whatsapp, handler_timeout=0.2)
    with anyio.fail_after(20):
        assert await whatsapp_post(app, receive) == 503
    assert handled == ["wamid.1"]


async def test_a_body_that_waits_past_its_deadline_is_408_on_both_backends() -> None:
    async def on_whatsapp(message: Any) -> None:
        raise AssertionError("handled a body that never came")

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    app = WebhookReceiver(secret=SECRET, on_whatsapp=on_whatsapp, body_timeout=0.2)
    with anyio.fail_after(20):
        assert await whatsapp_post(app, receive) == 408


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_post_asks_which_library_runs_once_for_its_body_and_handler(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []

    def counted() -> bool:
        asked.append(_deadline_on_asyncio())
        return asked[-1]

    monkeypatch.setattr(_deadline, "on_asyncio", counted)
    monkeypatch.setattr(_receiver, "on_asyncio", counted)
    handled: list[object] = []

    async def on_whatsapp(message: Any) -> None:
        handled.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": WHATSAPP_FORM, "more_body": False}

    app = WebhookReceiver(secret=SECRET, on_whatsapp=on_whatsapp)
    assert await whatsapp_post(app, receive) == 200
    assert len(handled) == 1
    assert asked == [True]


def test_a_coroutine_that_waits_outside_any_task_is_refused_and_closed() -> None:
    """An ASGI server runs each request in a task; from a bare loop callback a deadline has
    no task to cancel: a coroutine that finishes at once is fine, one that waits is closed
    and refused (anyio's scope refused both)."""
    log: list[object] = []

    async def waits() -> None:
        await trap(log)

    async def quick() -> None:
        log.append("quick")

    outcome: list[object] = []

    def in_a_callback() -> None:
        outcome.append(step_within(quick(), 5, time.perf_counter()))
        coro = waits()
        try:
            step_within(coro, 5, time.perf_counter())
        except RuntimeError as refused:
            outcome.append(str(refused))
        outcome.append(inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED)

    async def main() -> None:
        asyncio.get_running_loop().call_soon(in_a_callback)
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert outcome[0] is None
    assert "needs the request to run in a task" in str(outcome[1])
    assert outcome[2] is True
    assert log == ["quick", "closed"]
