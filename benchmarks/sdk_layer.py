"""The SDK's own cost per recipient, stage by stage, with no network at all.

Every stage of a bulk SMS send that is the SDK's own work — validating and normalising
the input, writing the request body, reading the answer, building one outcome per
recipient — timed in process on 50-recipient chunks, then the whole ``send_sms_bulk`` over
an in-process transport that answers from a table (no HTTP stack, no server). What
remains above the stages is the runner: input reading, chunking, tasks, the limiter and
the retry layer.

    .venv/bin/python benchmarks/sdk_layer.py [--recipients 50000]

Run it with ``PYTHONPATH`` pointing at another checkout to compare two versions of the
SDK on the same machine in the same minute (the stages' signatures have not changed).
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from _common import machine, write_section
from blast import messages

from messaging_async import IsmsClient, RetryPolicy, Sms
from messaging_async.isms import _outcomes, _wire

CHUNK = 50


def client(transport: httpx.AsyncBaseTransport | None = None) -> IsmsClient:
    return IsmsClient(
        username="u",
        password="p",
        sms_base_urls=["http://127.0.0.1:9"],  # never dialled: the transport answers
        retry=RetryPolicy.no_wait(),
        transport=transport or httpx.MockTransport(lambda request: httpx.Response(500)),
    )


def answer_for(chunk: list[Sms], first_id: int) -> bytes:
    results = [
        {"dstno": sms.to, "code": 2000, "sms_id": str(first_id + i)} for i, sms in enumerate(chunk)
    ]
    return json.dumps(
        {"total_failed": 0, "total_credits_used": len(chunk), "results": results}
    ).encode()


def stages(chunk: list[Sms]) -> dict[str, Callable[[], object]]:
    isms = client()
    prepare = isms._prepare_sms
    unit = [prepare(None, i, sms) for i, sms in enumerate(chunk)]
    pairs = [(sms.to, sms.text) for sms in chunk]
    answer = answer_for(chunk, 1_000_000).decode()
    parsed = _wire.parse_json_send(answer)
    recipients = [(i, sms.to, sms.ref) for i, sms in enumerate(chunk)]
    encoding = unit[0].message[1]
    return {
        "validate and normalise": lambda: [prepare(None, i, sms) for i, sms in enumerate(chunk)],
        "request body": lambda: _wire.build_json_send(
            username="u", password="p", sender_id=None, encoding=encoding, recipients=pairs
        ),
        "read the answer (JSON)": lambda: _wire.parse_json_send(answer),
        "one outcome per recipient": one_outcome_each(isms, recipients, parsed, answer),
    }


def one_outcome_each(
    isms: IsmsClient, recipients: list[tuple[int, str, object]], parsed: Any, answer: str
) -> Callable[[], object]:
    """What the bulk road does with the usual answer: since the fourth pass, the unit kept
    compact (``accepted_unit``, its outcomes built when a report is read); before it, one
    ``Outcome`` each. Chosen by what the checkout has, so ``PYTHONPATH`` compares both."""
    compact = getattr(_outcomes, "accepted_unit", None)
    if compact is not None:
        return lambda: compact(recipients, parsed, answer)
    numbers = [number for _, number, _ in recipients]
    texts = ["x"] * len(recipients)
    return lambda: _outcomes.chunk_outcomes(
        recipients, parsed, isms._redactor.including(texts, numbers)
    )


def whole_send(batch: list[Sms]) -> Callable[[], object]:
    """``send_sms_bulk`` over a transport that looks each request body up in a table."""
    table: dict[bytes, bytes] = {}
    for start in range(0, len(batch), CHUNK):
        chunk = batch[start : start + CHUNK]
        body = _wire.build_json_send(
            username="u",
            password="p",
            sender_id=None,
            encoding=client()._prepare_sms(None, 0, chunk[0]).message[1],
            recipients=[(sms.to, sms.text) for sms in chunk],
        )
        table[body] = answer_for(chunk, start)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=table[request.content])
    )

    def run() -> None:
        async def send() -> None:
            async with client(transport) as isms:
                report = await isms.send_sms_bulk(batch)
            assert report.all_accepted, report.counts

        anyio.run(send)

    return run


def per_recipient_us(function: Callable[[], object], recipients: int, repeat: int) -> float:
    number = max(1, 20_000 // recipients)
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number / recipients * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    batch = messages(args.recipients)
    rows = ["| stage | µs per recipient |", "|---|---:|"]
    total = 0.0
    for name, function in stages(batch[:CHUNK]).items():
        cost = per_recipient_us(function, CHUNK, repeat=30)
        total += cost
        rows.append(f"| {name} | {cost:.2f} |")
    whole = per_recipient_us(whole_send(batch), len(batch), repeat=5)
    rows.append(f"| *the stages together* | {total:.2f} |")
    rows.append(f"| whole `send_sms_bulk`, in-process transport | {whole:.2f} |")
    rest = whole - total
    rows.append(f"| *of which the runner, retry layer and httpx's request objects* | {rest:.2f} |")
    body = (
        f"{args.recipients:,} personalised SMS in chunks of {CHUNK}; each stage is its best of "
        f"30 runs, the whole send its best of 5. {machine()}.\n\n" + "\n".join(rows)
    )
    print(body)
    if not args.no_write:
        write_section("The SDK's own layer", body)


if __name__ == "__main__":
    main()
