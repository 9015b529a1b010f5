"""Single sends (OTPs) while a bulk blast runs on the same client: the single-send lane.

A web service that also runs marketing blasts shares one client. Against a gateway that takes
``--latency`` seconds per request, this times ``--sends`` single sends (``--senders`` at a
time, as concurrent request handlers would) three ways, in one run:

(a) on an idle client; (b) while a blast at 50 concurrent requests runs on the same client,
with the default ``single_send_capacity``; (c) the same blast with ``single_send_capacity=0``
(no lane: single sends queue with the blast's requests for the connections).

The target (issue 16): p99 of (b) within 3 x p99 of (a).

    .venv/bin/python benchmarks/otp_lane.py [--sends 200] [--latency 0.2] [--senders 8]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import anyio
from _common import gateway_process, machine, percentile, write_section

from messaging_async import IsmsClient, RetryPolicy, Sms
from messaging_async._options import DEFAULT_SINGLE_SEND_CAPACITY

BLAST_CONCURRENCY = 50
LANE = DEFAULT_SINGLE_SEND_CAPACITY


def client(url: str, **settings: Any) -> IsmsClient:
    return IsmsClient(
        username="bench-user",
        password="bench-password",
        sms_base_urls=[url],
        max_concurrency=BLAST_CONCURRENCY,
        retry=RetryPolicy.no_wait(),
        **settings,
    )


def endless_blast(stop: anyio.Event) -> Iterator[Sms]:
    """Messages until ``stop`` is set: the blast lasts as long as the single sends."""
    number = 0
    while not stop.is_set():
        number += 1
        yield Sms(to=f"6013{number % 10_000_000:07d}", text=f"Sale today, customer {number}")


async def single_sends(isms: IsmsClient, sends: int, senders: int) -> list[float]:
    latencies: list[float] = []
    per_sender = sends // senders

    async def handler(sender: int) -> None:
        for turn in range(per_sender):
            started = time.perf_counter()
            await isms.send_sms(f"6012{sender:03d}{turn:04d}", f"Your OTP is {turn:06d}")
            latencies.append(time.perf_counter() - started)

    async with anyio.create_task_group() as handlers:
        for sender in range(senders):
            handlers.start_soon(handler, sender)
    return latencies


async def during_blast(url: str, sends: int, senders: int, **settings: Any) -> list[float]:
    stop = anyio.Event()
    async with client(url, **settings) as isms, anyio.create_task_group() as tasks:
        tasks.start_soon(isms.send_sms_bulk, endless_blast(stop))
        await anyio.sleep(0.5)  # the blast is under way: every bulk slot taken
        latencies = await single_sends(isms, sends, senders)
        stop.set()
    return latencies


async def idle(url: str, sends: int, senders: int) -> list[float]:
    async with client(url) as isms:
        return await single_sends(isms, sends, senders)


def row(label: str, latencies: list[float], baseline: float) -> str:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return f"| {label} | {p50 * 1e3:.0f} | {p99 * 1e3:.0f} | {p99 / baseline:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    with gateway_process(delay=args.latency) as url:
        quiet = anyio.run(idle, url, args.sends, args.senders)
        lane = anyio.run(during_blast, url, args.sends, args.senders)
        no_lane = anyio.run(
            lambda: during_blast(url, args.sends, args.senders, single_send_capacity=0)
        )
    baseline = percentile(quiet, 0.99)
    ratio = percentile(lane, 0.99) / baseline
    body = "\n".join(
        [
            f"{machine()}; gateway latency {args.latency * 1e3:.0f} ms, {args.sends} single "
            f"sends by {args.senders} concurrent senders, blast at {BLAST_CONCURRENCY} "
            "concurrent requests on the same client.",
            "",
            "| single sends | p50 ms | p99 ms | p99 / idle p99 |",
            "|---|---|---|---|",
            row("idle client", quiet, baseline),
            row(
                f"during a blast, lane of {DEFAULT_SINGLE_SEND_CAPACITY} (default)", lane, baseline
            ),
            row("during a blast, no lane (single_send_capacity=0)", no_lane, baseline),
            "",
            f"Target: p99 during a blast within 3 x idle: {ratio:.2f} "
            f"({'met' if ratio <= 3 else 'NOT met'}).",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("Single sends during a blast (otp_lane.py)", body)


if __name__ == "__main__":
    main()
