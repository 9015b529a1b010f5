"""WhatsApp template sends (one request each) against a gateway in a separate process:
the SDK, the SDK on the aiohttp backend, raw httpx posting the same prebuilt bodies, and
a hand-written aiohttp client that builds each message's JSON and parses each answer (what
a correct client pays at the least).

    .venv/bin/python benchmarks/whatsapp.py [--messages 10000]
"""

from __future__ import annotations

import argparse
import json
import time

import aiohttp
import anyio
from _common import gateway_process, machine, measure_rounds, time_requests, verdict, write_section
from blast import raw_httpx

from messaging_async import IsmsClient, RetryPolicy, WhatsAppTemplate


def templates(count: int) -> list[WhatsAppTemplate]:
    return [
        WhatsAppTemplate(
            to=f"601{2 + n % 8}{n:07d}", template_code="order_shipped", params=[f"MY-{n}"]
        )
        for n in range(count)
    ]


# The fields every template body carries: the prebuilt bodies and the hand-written client
# write the same JSON the SDK does.
COMMON = {
    "AppId": "a",
    "AppSecret": "s",
    "un": "u",
    "pwd": "p",
    "agreedterm": "YES",
    "ChannelType": "whatsapp",
    "Type": "template",
    "From": "60111111111",
}


def bodies(batch: list[WhatsAppTemplate]) -> list[bytes]:
    return [
        json.dumps(
            {
                **COMMON,
                "To": m.to,
                "TemplateCode": m.template_code,
                "Language": "en",
                "TemplateParams": {"param1": f"MY-{n}"},
            }
        ).encode()
        for n, m in enumerate(batch)
    ]


async def hand_written_aiohttp(
    url: str, batch: list[WhatsAppTemplate], concurrency: int, latencies: list[float]
) -> None:
    """The baseline a correct client pays: per message, the same JSON body built from the
    message, one POST, the answer parsed and its ``statusCode`` checked."""
    limiter = anyio.CapacityLimiter(concurrency)
    target = f"{url}/isms_send_waba.php"
    headers = {"Content-Type": "application/json"}
    accepted = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def post(message: WhatsAppTemplate) -> None:
            nonlocal accepted
            body = {
                **COMMON,
                "To": message.to,
                "TemplateCode": message.template_code,
                "Language": message.language,
                "TemplateParams": {
                    f"param{i}": str(v) for i, v in enumerate(list(message.params or ()), 1)
                },
            }
            async with limiter:
                started = time.perf_counter()
                async with session.post(
                    target, data=json.dumps(body).encode(), headers=headers
                ) as r:
                    answer = json.loads(await r.read())
                latencies.append(time.perf_counter() - started)
            if r.status == 200 and answer["statusCode"] == "OK":
                accepted += 1

        async with anyio.create_task_group() as tasks:
            for message in batch:
                tasks.start_soon(post, message)
    assert accepted == len(batch), accepted


async def sdk(
    url: str, batch: list[WhatsAppTemplate], concurrency: int, latencies: list[float], backend: str
) -> None:
    isms = IsmsClient(
        username="u",
        password="p",
        app_id="a",
        app_secret="s",
        waba_number="60111111111",
        waba_base_urls=[url],
        max_whatsapp_concurrency=concurrency,
        retry=RetryPolicy.no_wait(),
        http_backend=backend,  # type: ignore[arg-type]
    )
    time_requests(isms, latencies)
    async with isms:
        report = await isms.send_whatsapp_bulk(batch)
    assert report.all_accepted, report.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; best kept")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    batch, posts = templates(args.messages), bodies(templates(args.messages))
    rows = [
        "| concurrency | client | msg/s | client CPU µs/msg | gateway CPU % | p50 ms | p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    verdicts = ["| target (msg/s ratio) | measured | target | |", "|---|---:|---:|---|"]
    with gateway_process() as url:
        for concurrency in (10, 50, 200):
            variants = {
                "SDK": lambda lat, c=concurrency: sdk(url, batch, c, lat, "httpx"),
                "SDK, aiohttp backend": lambda lat, c=concurrency: sdk(
                    url, batch, c, lat, "aiohttp"
                ),
                "raw httpx": lambda lat, c=concurrency: raw_httpx(
                    url, posts, c, lat, "isms_send_waba.php"
                ),
                "hand-written aiohttp": lambda lat, c=concurrency: hand_written_aiohttp(
                    url, batch, c, lat
                ),
            }
            counted = {name: (run, args.messages, args.messages) for name, run in variants.items()}
            best = measure_rounds(url, counted, args.rounds)
            for name, f in best.items():
                rows.append(
                    f"| {concurrency} | {name} | {f['msg/s']:,.0f} | {f['client µs/msg']:.0f} "
                    f"| {f['server CPU %']:.0f} | {f['p50 ms']:.1f} | {f['p99 ms']:.1f} |"
                )
            ratio = best["SDK"]["msg/s"] / best["raw httpx"]["msg/s"]
            verdicts.append(verdict(f"SDK / raw httpx, concurrency {concurrency}", ratio, 0.9))
            if concurrency == 50:
                fast = best["SDK, aiohttp backend"]["msg/s"]
                baseline = best["hand-written aiohttp"]["msg/s"]
                verdicts.append(
                    verdict(
                        "SDK on aiohttp / hand-written aiohttp, concurrency 50",
                        fast / baseline,
                        0.6,
                    )
                )
    body = (
        f"{args.messages:,} template sends, one request each. Best of {args.rounds} "
        f"interleaved rounds. {machine()}.\n\n" + "\n".join(rows) + "\n\n" + "\n".join(verdicts)
    )
    print(body)
    if not args.no_write:
        write_section("WhatsApp", body)


if __name__ == "__main__":
    main()
