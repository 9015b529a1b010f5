"""Each event loop's batchers, found without anyio's ``RunVar`` on asyncio
(``LoopBatchers.current``): the last asyncio loop's are kept at hand, and only that
loop's."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
import trio.lowlevel

from messaging_async import SqliteLedger
from messaging_async.ledger import _loop_batchers

from .conftest import sms_entries


def _found(ledger: SqliteLedger, backend: str) -> list[dict[Any, Any]]:
    """The batchers ``ledger`` finds, twice, in one run of ``backend``'s loop."""

    async def find() -> list[dict[Any, Any]]:
        return [ledger._loops.current(), ledger._loops.current()]

    return anyio.run(find, backend=backend)


def test_a_loop_finds_its_batchers_again_without_the_run_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second look-up of a loop is the kept one: anyio's ``RunVar`` is asked once (it
    asks which library runs and for its token: 1.8 µs a unit's claim)."""
    run_var = _loop_batchers._BATCHERS
    asked = []

    class Counted:
        def get(self) -> Any:
            asked.append(1)
            return run_var.get()

        def set(self, value: Any) -> None:
            run_var.set(value)

    monkeypatch.setattr(_loop_batchers, "_BATCHERS", Counted())
    first, again = _found(SqliteLedger(tmp_path / "l.db"), "asyncio")
    assert first is again
    assert len(asked) == 1


def test_each_loop_has_its_own_batchers_and_an_ended_loop_is_let_go(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    first = _found(ledger, "asyncio")[0]
    gc.collect()
    kept = ledger._loops.last
    assert kept is not None
    assert kept[0]() is None
    second = _found(ledger, "asyncio")[0]
    assert second is not first  # a batcher's events belong to the loop that made them
    on_trio = _found(ledger, "trio")
    assert on_trio[0] is on_trio[1]
    assert on_trio[0] is not second
    last = ledger._loops.last
    assert last is not None
    assert last[1] is second


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_closed_ledger_keeps_no_loops_batchers(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    async with ledger:
        ledger._loops.current()
        assert ledger._loops.last is not None
    assert ledger._loops.last is None


async def _claims(ledger: SqliteLedger, job: str) -> None:
    """A job of one unit of three SMS: its claim is a trip of the ledger's batchers."""
    await ledger.open_job(job, gateway="isms")
    await ledger.begin_unit(job, sms_entries(3))
    await ledger.close_job(job)


def test_trio_as_an_asyncio_loops_guest_uses_its_own_batchers(tmp_path: Path) -> None:
    """trio run as the guest of an asyncio loop (``start_guest_run``) runs its tasks in
    that loop's callbacks, the loop running: the loop's kept batchers were trio's too (an
    asyncio scope in a trio task: "cannot create weak reference to 'NoneType' object")."""
    ledger = SqliteLedger(tmp_path / "l.db")

    async def host() -> None:
        loop = asyncio.get_running_loop()
        async with ledger:
            await _claims(ledger, "asyncio-first")
            done: asyncio.Future[Any] = loop.create_future()
            trio.lowlevel.start_guest_run(
                _claims,
                ledger,
                "trio-guest",
                run_sync_soon_threadsafe=loop.call_soon_threadsafe,
                done_callback=done.set_result,
            )
            (await done).unwrap()  # its error raised here, before the next claim
            await _claims(ledger, "asyncio-after")

    asyncio.run(host())


def test_trio_run_from_an_asyncio_task_uses_its_own_batchers(tmp_path: Path) -> None:
    """``trio.run`` called by an asyncio coroutine (a synchronous library's), the asyncio
    loop running in the same thread: trio's calls find trio's batchers, then asyncio's
    its own again."""
    ledger = SqliteLedger(tmp_path / "l.db")

    async def host() -> None:
        async with ledger:
            await _claims(ledger, "asyncio-first")
            on_asyncio = ledger._loops.current()
            trio.run(_claims, ledger, "trio-nested")
            on_trio = trio.run(_found_now, ledger)
            assert on_trio is not on_asyncio
            assert ledger._loops.current() is on_asyncio
            await _claims(ledger, "asyncio-after")

    asyncio.run(host())


async def _found_now(ledger: SqliteLedger) -> dict[Any, Any]:
    return ledger._loops.current()
