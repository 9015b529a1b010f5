"""WhatsApp template sends (one request each) against a gateway in a separate process:
the SDK, the SDK on the aiohttp backend, and raw httpx posting the same prebuilt bodies.

    .venv/bin/python benchmarks/whatsapp.py [--messages 10000]
"""

from __future__ import annotations

import argparse
import json

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


def bodies(batch: list[WhatsAppTemplate]) -> list[bytes]:
    common = {
        "AppId": "a",
        "AppSecret": "s",
        "un": "u",
        "pwd": "p",
        "agreedterm": "YES",
        "ChannelType": "whatsapp",
        "Type": "template",
        "From": "60111111111",
    }
    return [
        json.dumps(
            {
                **common,
                "To": m.to,
                "TemplateCode": m.template_code,
                "Language": "en",
                "TemplateParams": {"param1": f"MY-{n}"},
            }
        ).encode()
        for n, m in enumerate(batch)
    ]


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
    body = (
        f"{args.messages:,} template sends, one request each. Best of {args.rounds} "
        f"interleaved rounds. {machine()}.\n\n" + "\n".join(rows) + "\n\n" + "\n".join(verdicts)
    )
    print(body)
    if not args.no_write:
        write_section("WhatsApp", body)


if __name__ == "__main__":
    main()
