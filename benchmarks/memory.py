"""Peak memory of a streamed blast: 1,000,000 recipients from a generator vs 100,000.

Each size runs in a fresh process (peak RSS is per process), against an in-process gateway
that answers at once, so the input size is the only difference. Bounded memory means the
two peaks are about equal.

    .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

import argparse
import json
import resource
from collections.abc import Iterator

import anyio
import httpx
from _common import machine, measure_in_child, write_section

from messaging_async import IsmsClient, RetryPolicy, Sms


class AnswerAll(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(await request.aread())
        results = [{"dstno": m["dstno"], "code": 2000, "sms_id": "1"} for m in body["messages"]]
        return httpx.Response(200, json={"total_credits_used": len(results), "results": results})


def recipients(count: int) -> Iterator[Sms]:
    for n in range(count):
        yield Sms(
            to=f"601{2 + n % 8}{n % 10_000_000:07d}", text=f"Hi customer {n}, your parcel is ready"
        )


async def blast(count: int) -> int:
    isms = IsmsClient(
        username="u", password="p", transport=AnswerAll(), retry=RetryPolicy.no_wait()
    )
    seen = 0
    async with isms:
        async for outcome in isms.stream_sms_bulk(recipients(count)):
            seen += outcome.ok
    return seen


def child(count: int) -> None:
    accepted = anyio.run(blast, count)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"accepted": accepted, "peak_mib": peak_kib / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", type=int)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    small, large = measure_in_child(__file__, 100_000), measure_in_child(__file__, 1_000_000)
    body = (
        f"`stream_sms_bulk` over a generator, in a fresh process each. {machine()}.\n\n"
        "| recipients | peak RSS |\n|---:|---:|\n"
        f"| 100,000 | {small['peak_mib']:.1f} MiB |\n"
        f"| 1,000,000 | {large['peak_mib']:.1f} MiB |\n\n"
        f"Ratio 1,000,000 / 100,000: {large['peak_mib'] / small['peak_mib']:.2f} "
        "(bounded: about 1)."
    )
    print(body)
    if not args.no_write:
        write_section("Memory", body)


if __name__ == "__main__":
    main()
