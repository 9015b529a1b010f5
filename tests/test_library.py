"""``_library.asyncio_loop``: the running asyncio loop only where asyncio is what runs (the
ledger's kept batchers and the webhook receiver's deadlines both ask it)."""

from __future__ import annotations

import asyncio
from typing import Any

import sniffio
import trio
import trio.lowlevel

from messaging_async._library import asyncio_loop


def test_asyncio_gives_its_running_loop() -> None:
    async def main() -> bool:
        return asyncio_loop() is asyncio.get_running_loop()

    assert asyncio.run(main())


def test_no_loop_and_trio_give_none() -> None:
    assert asyncio_loop() is None

    async def main() -> Any:
        return asyncio_loop()

    assert trio.run(main) is None


def test_trio_in_an_asyncio_loops_thread_gives_none() -> None:
    """trio run by an asyncio coroutine, or as the loop's guest, the loop still running."""

    async def nested() -> Any:
        return asyncio_loop()

    async def host() -> tuple[Any, Any, Any]:
        in_trio_run = trio.run(nested)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        trio.lowlevel.start_guest_run(
            nested,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result,
        )
        return in_trio_run, (await done).unwrap(), asyncio_loop()

    in_trio_run, as_guest, after = asyncio.run(host())
    assert in_trio_run is None
    assert as_guest is None
    assert after is not None


def test_another_library_named_in_the_context_gives_none() -> None:
    async def main() -> Any:
        token = sniffio.current_async_library_cvar.set("curio")
        try:
            return asyncio_loop()
        finally:
            sniffio.current_async_library_cvar.reset(token)

    assert asyncio.run(main()) is None
