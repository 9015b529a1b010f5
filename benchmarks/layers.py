"""Where a bulk send's CPU goes, layer by layer, against the gateway in a separate process:
raw aiohttp, httpx's client over the same aiohttp transport, and the SDK on that backend.
The differences are what httpx and the SDK's own layer (validation, chunking, outcomes) cost.

    .venv/bin/python benchmarks/layers.py [--messages 30000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
from _common import gateway_process, machine, write_section
from blast import bodies, messages, raw_aiohttp
from httpx_aiohttp import AiohttpTransport

from messaging_async import IsmsClient, RetryPolicy, Sms

CONCURRENCY = 10


async def sdk(url: str, batch: list[Sms], posts: list[bytes]) -> None:
    isms = IsmsClient(
        username="u",
        password="p",
        sms_base_urls=[url],
        max_concurrency=CONCURRENCY,
        http_backend="aiohttp",
        retry=RetryPolicy.no_wait(),
    )
    async with isms:
        assert (await isms.send_sms_bulk(batch)).all_accepted


async def httpx_over_aiohttp(url: str, batch: list[Sms], posts: list[bytes]) -> None:
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=CONCURRENCY))
    async with httpx.AsyncClient(transport=transport) as client:

        async def post(body: bytes) -> None:
            async with limiter:
                response = await client.post(
                    f"{url}/isms_send_json.php",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                response.json()

        async with anyio.create_task_group() as tasks:
            for body in posts:
                tasks.start_soon(post, body)


async def aiohttp_only(url: str, batch: list[Sms], posts: list[bytes]) -> None:
    await raw_aiohttp(url, posts, CONCURRENCY, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    batch = messages(args.messages)
    posts = bodies(batch)
    layers: list[tuple[str, Callable[[str, list[Sms], list[bytes]], Awaitable[None]]]] = [
        ("raw aiohttp", aiohttp_only),
        ("httpx client over aiohttp", httpx_over_aiohttp),
        ("SDK, aiohttp backend", sdk),
    ]
    rows = ["| layer | client CPU µs/msg | msg/s |", "|---|---:|---:|"]
    with gateway_process() as url:
        for name, run in layers:
            cpu, started = time.process_time(), time.perf_counter()
            anyio.run(run, url, batch, posts)
            per_message = (time.process_time() - cpu) / len(batch) * 1e6
            rate = len(batch) / (time.perf_counter() - started)
            rows.append(f"| {name} | {per_message:.1f} | {rate:,.0f} |")
    body = (
        f"{args.messages:,} SMS in requests of 50, concurrency {CONCURRENCY}, gateway in a "
        f"separate process. {machine()}.\n\n" + "\n".join(rows)
    )
    print(body)
    if not args.no_write:
        write_section("Where the CPU goes", body)


if __name__ == "__main__":
    main()
