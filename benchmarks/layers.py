"""Where a bulk send's CPU goes, layer by layer, against the gateway in a separate process.

- raw aiohttp posting prebuilt bodies and reading the answers as bytes: the floor;
- raw aiohttp that also writes each body from the messages, parses each answer and maps
  each recipient to its result: the least a correct client does (``blast.hand_aiohttp``);
- httpx's client over aiohttp (``httpx-aiohttp``): what the SDK's aiohttp backend would
  cost had it kept httpx's request and response objects (it does not);
- the SDK on its aiohttp backend: validation, chunking, outcomes and the retry layer.

    .venv/bin/python benchmarks/layers.py [--messages 30000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
from _common import gateway_process, machine, write_section
from blast import bodies, hand_aiohttp, messages, raw_aiohttp
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


async def aiohttp_with_json(url: str, batch: list[Sms], posts: list[bytes]) -> None:
    await hand_aiohttp(url, batch, CONCURRENCY, [])


async def aiohttp_only(url: str, batch: list[Sms], posts: list[bytes]) -> None:
    await raw_aiohttp(url, posts, CONCURRENCY, [])


Layer = Callable[[str, list[Sms], list[bytes]], Awaitable[None]]
LAYERS: list[tuple[str, Layer]] = [
    ("raw aiohttp, prebuilt bodies", aiohttp_only),
    ("hand-written aiohttp client: bodies written, answers parsed and mapped", aiohttp_with_json),
    ("httpx's client over aiohttp (not used by the SDK)", httpx_over_aiohttp),
    ("SDK, aiohttp backend", sdk),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best kept")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    batch = messages(args.messages)
    posts = bodies(batch)
    best: dict[str, tuple[float, float]] = {}
    with gateway_process() as url:
        for _ in range(args.rounds):
            for name, run in LAYERS:
                cpu, started = time.process_time(), time.perf_counter()
                anyio.run(run, url, batch, posts)
                per_message = (time.process_time() - cpu) / len(batch) * 1e6
                rate = len(batch) / (time.perf_counter() - started)
                if name not in best or per_message < best[name][0]:
                    best[name] = (per_message, rate)
    rows = ["| layer | client CPU µs/msg | msg/s |", "|---|---:|---:|"]
    rows += [f"| {name} | {cpu:.1f} | {rate:,.0f} |" for name, (cpu, rate) in best.items()]
    body = (
        f"{args.messages:,} SMS in requests of 50, concurrency {CONCURRENCY}, gateway in a "
        f"separate process; best of {args.rounds} interleaved rounds. {machine()}.\n\n"
        + "\n".join(rows)
    )
    print(body)
    if not args.no_write:
        write_section("Where the CPU goes", body)


if __name__ == "__main__":
    main()
