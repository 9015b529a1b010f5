"""What the SDK's own layer costs per message, as a ratio to raw httpx on the same transport.

Both sides post to the same in-process transport, which answers a prebuilt JSON body, so
the difference is the SDK's work: validation, number normalisation, encoding choice,
chunking, JSON encoding, answer parsing, result matching and outcome objects. The ratio
is measured in one run, since absolute times on a shared 2-core machine are noise.

    .venv/bin/python benchmarks/bulk_overhead.py [recipients]
"""

from __future__ import annotations

import json
import sys
import time

import anyio
import httpx
from blast import bodies as request_bodies

from messaging_async import IsmsClient, RetryPolicy, Sms

CHUNK = 50


class AnswerAll(httpx.AsyncBaseTransport):
    """Answers every JSON-API request with success for each of its 50 recipients."""

    def __init__(self) -> None:
        self.answer = json.dumps(
            {
                "total_credits_used": CHUNK,
                "results": [
                    {"dstno": f"6012{i:07d}", "code": 2000, "sms_id": str(i)} for i in range(CHUNK)
                ],
            }
        ).encode()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200, content=self.answer)


def messages(count: int) -> list[Sms]:
    return [
        Sms(to=f"6012{i % CHUNK:07d}", text=f"Hi customer {i}, your code is {i:06d}")
        for i in range(count)
    ]


async def raw_httpx(bodies: list[bytes], concurrency: int) -> float:
    limiter = anyio.CapacityLimiter(concurrency)
    async with httpx.AsyncClient(transport=AnswerAll()) as client:

        async def post(body: bytes) -> None:
            async with limiter:
                response = await client.post(
                    "https://www.isms.com.my/isms_send_json.php", content=body
                )
                json.loads(response.content)

        started = time.process_time()
        async with anyio.create_task_group() as tasks:
            for body in bodies:
                tasks.start_soon(post, body)
        return time.process_time() - started


async def sdk(batch: list[Sms], concurrency: int) -> float:
    async with IsmsClient(
        username="u",
        password="p",
        transport=AnswerAll(),
        max_concurrency=concurrency,
        retry=RetryPolicy.no_wait(),
    ) as isms:
        started = time.process_time()
        report = await isms.send_sms_bulk(batch)
        elapsed = time.process_time() - started
    assert report.all_accepted
    return elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    batch = messages(count)
    bodies = request_bodies(batch)  # the same prebuilt bodies as the blast benchmark
    print(f"{count} recipients, {len(bodies)} requests, CPU seconds (best of 3)")
    print(f"{'concurrency':>11} {'raw httpx':>10} {'SDK':>8} {'ratio':>6} {'SDK µs/msg':>11}")
    for concurrency in (10, 50):
        raw = min(anyio.run(raw_httpx, bodies, concurrency) for _ in range(3))
        ours = min(anyio.run(sdk, batch, concurrency) for _ in range(3))
        per_message = ours / count * 1e6
        print(
            f"{concurrency:>11} {raw:>10.3f} {ours:>8.3f} {ours / raw:>6.2f} {per_message:>11.1f}"
        )


if __name__ == "__main__":
    main()
