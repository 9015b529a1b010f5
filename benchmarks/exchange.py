"""The HTTP exchange alone: CPU per 50-recipient request, each backend's ``Exchange.post``
against the benchmark gateway in its own process, concurrency 50, interleaved rounds.

What the two backends cost per request beneath the SDK's own layer (which they share):
the default backend (our pool of httpcore's connections on ``NativeBackend``) against the
aiohttp backend. Prints its table; writes nothing.

    .venv/bin/python benchmarks/exchange.py [--requests 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import anyio
import httpx
from _common import gateway_process
from blast import bodies, messages

from messaging_async._exchange import AiohttpExchange, Exchange, HttpxExchange

CONCURRENCY = 50


async def blast(exchange: Exchange, url: str, body: bytes, requests: int) -> None:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            reply = await exchange.post(url, body, "application/json")
            assert reply.status == 200, reply.status

    try:
        async with anyio.create_task_group() as tasks:
            for _ in range(CONCURRENCY):
                tasks.start_soon(worker)
    finally:
        await exchange.aclose()


def cpu_per_request(backend: str, url: str, body: bytes, requests: int) -> float:
    timeout = httpx.Timeout(30.0)
    exchange: Exchange
    if backend == "default":
        exchange = HttpxExchange.pooled(CONCURRENCY, timeout)
    else:
        exchange = AiohttpExchange(CONCURRENCY, timeout)
    started = time.process_time()
    anyio.run(blast, exchange, url, body, requests)
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    body = bodies(messages(50))[0]
    figures: dict[str, list[float]] = {"default": [], "aiohttp": []}
    with gateway_process() as base:
        url = f"{base}/isms_send_json.php"
        for _ in range(args.rounds):
            for backend, seen in figures.items():
                seen.append(cpu_per_request(backend, url, body, args.requests))
    print("| backend | client CPU µs per request (each round) | least |")
    print("|---|---|---:|")
    for backend, seen in figures.items():
        rounds = " / ".join(f"{value:.0f}" for value in seen)
        print(f"| {backend} | {rounds} | {min(seen):.0f} |")


if __name__ == "__main__":
    main()
