"""``messaging-async demo``: the whole loop against the sandbox, on loopback sockets.

It starts the sandbox and a ``WebhookReceiver`` (uvicorn, 127.0.0.1), blasts personalised
SMS from a generated CSV with the progress bar, sends WhatsApp templates, receives the
delivery reports and an inbound WhatsApp reply through the receiver, answers it inside the
24-hour window, and prints a summary.
"""

from __future__ import annotations

import csv
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from ..isms import IsmsClient
from ..models import WhatsAppTemplate
from ..retry import RetryPolicy
from ..testing import FakeGateway, WebhookTarget, serve
from ..webhooks import (
    DeliveryReport,
    MemoryDeduplicator,
    WebhookReceiver,
    WhatsAppInbound,
)
from ._blast import CsvSource, Progress, print_summary, run_blast

NAMES = ["Ahmad", "Siti", "Mei Ling", "Rajesh", "Nurul", "Wei Jie", "Aisyah", "Kumar"]
TEXT = "{greeting} {name}! {body}"
BODIES = [
    ("Hi", "Your order {order} has shipped."),
    ("Salam", "Pesanan {order} anda telah dihantar."),
    ("您好", "您的订单 {order} 已发货。"),
]


def write_recipients(path: Path, count: int) -> None:
    """A CSV of ``count`` recipients with mixed English, Malay and Chinese texts."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name", "greeting", "body"])
        for row in range(count):
            greeting, body = BODIES[row % len(BODIES)]
            order = f"MY-{100_000 + row}"
            writer.writerow(
                [
                    f"601{2 + row % 8}{row:07d}",
                    NAMES[row % len(NAMES)],
                    greeting,
                    body.format(order=order),
                ]
            )


async def run_demo(*, recipients: int, out: TextIO) -> int:
    started = time.perf_counter()
    events: Counter[str] = Counter()

    async def on_delivery(report: DeliveryReport) -> None:
        events[f"delivery report: {report.status.value}"] += 1

    async def on_whatsapp(message: WhatsAppInbound) -> None:
        events["inbound WhatsApp"] += 1

    token = secrets.token_urlsafe(24)
    receiver = WebhookReceiver(
        secret=token, on_delivery=on_delivery, on_whatsapp=on_whatsapp, dedupe=MemoryDeduplicator()
    )
    # serve() keeps uvicorn's access log off: callback URLs carry the token, numbers, texts.
    async with serve(receiver) as hooks_url:
        fake = FakeGateway(webhook=WebhookTarget(hooks_url, token=token))
        async with serve(fake) as sandbox_url:
            print(f"sandbox on {sandbox_url}, webhook receiver on {hooks_url}", file=out)
            isms = fake.isms_client(
                base_url=sandbox_url, sender_id="DemoShop", retry=RetryPolicy(max_attempts=3)
            )
            async with isms:
                summary = await _blast(isms, recipients, out)
                templates = await isms.send_whatsapp_bulk(
                    WhatsAppTemplate(
                        to=f"6013{n:07d}", template_code="order_shipped", params=[f"MY-{n}"]
                    )
                    for n in range(20)
                )
                reports = await fake.deliver_reports()
                await fake.receive_whatsapp("60123456789", "Terima kasih! Bila barang sampai?")
                reply = await isms.send_whatsapp_text("60123456789", "Esok, sebelum jam 6 petang.")
            credits = 1_000_000 - fake.isms_credits
    print(
        f"WhatsApp templates: {templates.counts['accepted']} accepted of {len(templates)}", file=out
    )
    print(f"delivery reports sent by the sandbox: {reports:,}; received by the webhook:", file=out)
    for name, count in sorted(events.items()):
        print(f"  {name}: {count:,}", file=out)
    print(
        f"reply inside the 24-hour window: {'accepted' if reply.ok else reply.status.value}",
        file=out,
    )
    print(
        f"credits used: {credits} · demo finished in {time.perf_counter() - started:.1f} s",
        file=out,
    )
    received = sum(count for name, count in events.items() if name.startswith("delivery"))
    healthy = summary.exit_code == 0 and received == reports and events["inbound WhatsApp"] == 1
    return 0 if healthy else 1


async def _blast(isms: IsmsClient, recipients: int, out: TextIO) -> Any:
    with tempfile.TemporaryDirectory(prefix="messaging-async-demo-") as folder:
        path = Path(folder) / "recipients.csv"
        write_recipients(path, recipients)
        source = CsvSource(path, TEXT)
        print(f"blasting {recipients:,} personalised SMS from {path.name}", file=out)
        summary = await run_blast(
            isms,
            source,
            resend_path=path.with_suffix(".not_accepted.csv"),
            unknown_path=path.with_suffix(".unknown.csv"),
            progress=Progress(recipients),
        )
    print_summary(summary, out)
    return summary
