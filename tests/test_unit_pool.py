"""The bulk runner's units run on a few long-lived tasks (issue 17, fourth pass), and a
unit handed to the pool is either run or given back to be accounted for, never lost."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import httpx
import pytest
import sniffio

from messaging_async import Sms
from messaging_async._unit_pool import UnitPool

from .conftest import all_accepted, make_client

pytestmark = pytest.mark.anyio


def current_task() -> object:
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_task()
    return asyncio.current_task()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_bulk_run_sends_its_units_from_a_few_tasks_not_one_each() -> None:
    tasks: list[object] = []  # the task objects, kept: an id may be reused once one ends

    async def answer(request: httpx.Request) -> httpx.Response:
        tasks.append(current_task())
        await anyio.lowlevel.checkpoint()
        return all_accepted(request)

    batch = [Sms(to=f"6012{i:07d}", text="hello", ref=i) for i in range(1000)]
    transport = httpx.MockTransport(answer)
    async with make_client(transport=transport, max_concurrency=3) as client:
        report = await client.send_sms_bulk(batch)
    assert report.all_accepted
    assert len(report) == 1000
    # 20 units at concurrency 3 (one new task each before the pool): a task freed by one
    # unit may take the next before the task woken for it wakes, which then waits again.
    assert 1 <= len({id(task) for task in tasks}) <= 6


async def test_units_run_once_each_in_order_and_the_tasks_end_when_closed() -> None:
    ran: list[int] = []
    workers: set[int] = set()

    async def run(unit: int, token: object) -> None:
        workers.add(anyio.get_current_task().id)
        ran.append(unit)  # started in the order submitted
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        pool: UnitPool[int] = UnitPool(tasks, run)
        for unit in range(30):
            pool.submit(unit, None)
            if unit % 4 == 0:
                await anyio.lowlevel.checkpoint()
        pool.close()
    assert ran == list(range(30))
    assert len(workers) < 30
    assert pool.left() == []


class _NeverStarts:
    """A task group whose tasks never get to run: the run was cancelled first."""

    def __init__(self) -> None:
        self.started = 0

    def start_soon(self, function: object, *args: object) -> None:
        self.started += 1


async def test_units_no_task_took_are_given_back_once() -> None:
    group = _NeverStarts()

    async def run(unit: int, token: object) -> None:
        raise AssertionError("never runs")

    pool: UnitPool[int] = UnitPool(group, run)  # type: ignore[arg-type]
    for unit in range(3):
        pool.submit(unit, None)
    assert group.started == 3  # none was waiting: a task started for each
    assert pool.left() == [0, 1, 2]
    assert pool.left() == []


async def test_a_unit_taken_runs_and_the_rest_are_given_back_on_cancel() -> None:
    ran: list[int] = []

    async def run(unit: int, token: object) -> None:
        ran.append(unit)
        await anyio.sleep_forever()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:
            pool: UnitPool[int] = UnitPool(tasks, run)
            pool.submit(0, None)
            await anyio.sleep(0.01)  # the first task takes unit 0 and stays in it
            for unit in range(1, 5):
                pool.submit(unit, None)
            scope.cancel()
    assert sorted(ran + pool.left()) == list(range(5))  # each ran or given back, once
