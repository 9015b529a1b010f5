"""Bulk SMS throughput against a gateway in a separate process, side by side in one run.

(a) the SDK, (b) raw httpx posting the same prebuilt bodies, (c) the SDK on the aiohttp
backend, (d) raw aiohttp, (e) the naive path — one classic-API request per recipient, as
the provider's PHP example does — on a smaller N, per message. Client CPU is this process's;
the gateway's CPU is shown to prove it is not the bottleneck.

    .venv/bin/python benchmarks/blast.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp
import anyio
import httpx
from _common import gateway_process, machine, percentile, server_cpu, write_section
from httpx_aiohttp import AiohttpTransport

from messaging_async import IsmsClient, RetryPolicy, Sms

CHUNK = 50


def messages(count: int) -> list[Sms]:
    return [
        Sms(
            to=f"601{2 + i % 8}{i % 10_000_000:07d}",
            text=f"Hi customer {i}, your code is {i % 999_999:06d}",
        )
        for i in range(count)
    ]


def bodies(batch: list[Sms]) -> list[bytes]:
    return [
        json.dumps(
            {
                "un": "u",
                "pwd": "p",
                "type": "1",
                "agreedterm": "YES",
                "messages": [{"dstno": m.to, "msg": m.text} for m in batch[i : i + CHUNK]],
            }
        ).encode()
        for i in range(0, len(batch), CHUNK)
    ]


class Timed(httpx.AsyncBaseTransport):
    """Records each request's latency around the real transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport, latencies: list[float]):
        self.inner, self.latencies = inner, latencies

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.latencies.append(time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def sdk(
    url: str, batch: list[Sms], concurrency: int, latencies: list[float], backend: str
) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    inner = (
        AiohttpTransport(limits=limits)
        if backend == "aiohttp"
        else httpx.AsyncHTTPTransport(limits=limits)
    )
    async with Timed(inner, latencies) as transport:
        isms = IsmsClient(
            username="u",
            password="p",
            sms_base_urls=[url],
            max_concurrency=concurrency,
            retry=RetryPolicy.no_wait(),
            transport=transport,
        )
        async with isms:
            report = await isms.send_sms_bulk(batch)
    assert report.all_accepted, report.counts


async def raw_httpx(
    url: str, posts: list[bytes], concurrency: int, latencies: list[float], path: str
) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    limiter = anyio.CapacityLimiter(concurrency)
    classic = path.endswith("isms_send_all_id.php")  # the only form-encoded endpoint
    headers = {
        "Content-Type": "application/x-www-form-urlencoded" if classic else "application/json"
    }
    async with httpx.AsyncClient(limits=limits) as client:

        async def post(body: bytes) -> None:
            async with limiter:
                started = time.perf_counter()
                response = await client.post(f"{url}/{path}", content=body, headers=headers)
                response.read()
                latencies.append(time.perf_counter() - started)

        async with anyio.create_task_group() as tasks:
            for body in posts:
                tasks.start_soon(post, body)


async def raw_aiohttp(
    url: str, posts: list[bytes], concurrency: int, latencies: list[float]
) -> None:
    limiter = anyio.CapacityLimiter(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def post(body: bytes) -> None:
            async with limiter:
                started = time.perf_counter()
                async with session.post(
                    f"{url}/isms_send_json.php",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)

        async with anyio.create_task_group() as tasks:
            for body in posts:
                tasks.start_soon(post, body)


def measure(
    url: str, run: Callable[[list[float]], Awaitable[None]], recipients: int, requests: int
) -> dict[str, float]:
    latencies: list[float] = []
    cpu_before, server_before, started = time.process_time(), server_cpu(url), time.perf_counter()
    anyio.run(run, latencies)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    return {
        "msg/s": recipients / elapsed,
        "req/s": requests / elapsed,
        "client µs/msg": cpu / recipients * 1e6,
        "server CPU %": (server_cpu(url) - server_before) / elapsed * 100,
        "p50 ms": percentile(latencies, 0.5) * 1e3,
        "p99 ms": percentile(latencies, 0.99) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=2_000, help="recipients for the naive path")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    batch = messages(args.messages)
    posts = bodies(batch)
    naive = [
        urlencode(
            {"un": "u", "pwd": "p", "dstno": m.to, "msg": m.text, "type": "1", "agreedterm": "YES"}
        ).encode()
        for m in batch[: args.naive]
    ]
    rows = []
    with gateway_process() as url:
        for concurrency in (10, 50, 200):
            variants = {
                "(a) SDK": (
                    lambda lat, c=concurrency: sdk(url, batch, c, lat, "httpx"),
                    args.messages,
                    len(posts),
                ),
                "(b) raw httpx": (
                    lambda lat, c=concurrency: raw_httpx(url, posts, c, lat, "isms_send_json.php"),
                    args.messages,
                    len(posts),
                ),
                "(c) SDK, aiohttp backend": (
                    lambda lat, c=concurrency: sdk(url, batch, c, lat, "aiohttp"),
                    args.messages,
                    len(posts),
                ),
                "(d) raw aiohttp": (
                    lambda lat, c=concurrency: raw_aiohttp(url, posts, c, lat),
                    args.messages,
                    len(posts),
                ),
                "(e) naive: 1 classic request/recipient": (
                    lambda lat, c=concurrency: raw_httpx(
                        url, naive, c, lat, "isms_send_all_id.php"
                    ),
                    args.naive,
                    args.naive,
                ),
            }
            for name, (run, recipients, requests) in variants.items():
                figures = measure(url, run, recipients, requests)
                rows.append((concurrency, name, figures))
                print(concurrency, name, {k: round(v, 1) for k, v in figures.items()}, flush=True)
    table = [
        "| concurrency | client | msg/s | req/s | client CPU µs/msg | gateway CPU % "
        "| p50 ms | p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency, name, f in rows:
        table.append(
            f"| {concurrency} | {name} | {f['msg/s']:,.0f} | {f['req/s']:,.0f} "
            f"| {f['client µs/msg']:.1f} | {f['server CPU %']:.0f} | {f['p50 ms']:.1f} "
            f"| {f['p99 ms']:.1f} |"
        )
    body = (
        f"{args.messages:,} personalised SMS ({len(posts):,} requests of 50) to a gateway in a "
        f"separate process on 127.0.0.1; the naive path on {args.naive:,} recipients. "
        f"{machine()}.\n\n" + "\n".join(table)
    )
    print(body)
    if not args.no_write:
        write_section("Bulk SMS blast", body)


if __name__ == "__main__":
    main()
