"""µs per callback for each webhook parser, next to the plain decode it cannot do without.

The baseline for WhatsApp is ``parse_qsl`` + ``base64`` + ``json.loads`` on the same form
body; for the query-string callbacks it is ``parse_qsl``. The ratio is what the SDK adds
(tolerant decoding, field discovery, validation, the typed event).

    .venv/bin/python benchmarks/webhook_parsing.py
"""

from __future__ import annotations

import base64
import json
import sys
import timeit
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from _common import machine, write_section

from messaging_async import webhooks

MESSAGE = {
    "from": "60123456789",
    "to": "60111111111",
    "messageId": "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTdCNjE2",
    "type": "text",
    "text": {"body": "Hi, is my order MY-1042 on its way?"},
    "timestamp": "1732230000",
}
WHATSAPP_FORM = urlencode(
    {"response": base64.b64encode(json.dumps(MESSAGE).encode()).decode()}
).encode()
DELIVERY = "MsgId=1143007207&Sender=60111111111&Status=6&u=user&p=1234"
INCOMING = (
    "Shortcode=60111111111&Sender=60198765432&ContentType=2"
    "&Msg=4F60597D00200041004200430020D83DDE00"
)


def plain_whatsapp() -> object:
    value = dict(parse_qsl(WHATSAPP_FORM.decode()))["response"]
    return json.loads(base64.b64decode(value))


CASES: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
    ("isms whatsapp (form)", lambda: webhooks.parse_isms_whatsapp(WHATSAPP_FORM), plain_whatsapp),
    (
        "smscommy delivery",
        lambda: webhooks.parse_smscommy_delivery(DELIVERY),
        lambda: parse_qsl(DELIVERY),
    ),
    (
        "isms delivery",
        lambda: webhooks.parse_isms_delivery(DELIVERY.replace("MsgId", "sms_id")),
        lambda: parse_qsl(DELIVERY),
    ),
    (
        "smscommy incoming (hex)",
        lambda: webhooks.parse_smscommy_incoming(INCOMING),
        lambda: parse_qsl(INCOMING),
    ),
]


def per_call_us(function: Callable[[], object], number: int = 20_000) -> float:
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def main() -> None:
    rows = ["| callback | SDK µs | plain decode µs | ratio |", "|---|---:|---:|---:|"]
    for name, sdk, plain in CASES:
        ours, baseline = per_call_us(sdk), per_call_us(plain)
        rows.append(f"| {name} | {ours:.1f} | {baseline:.1f} | {ours / baseline:.1f} |")
    body = f"µs per callback, best of 5 runs of 20,000. {machine()}.\n\n" + "\n".join(rows)
    print(body)
    if "--no-write" not in sys.argv:
        write_section("Webhook parsing", body)


if __name__ == "__main__":
    main()
