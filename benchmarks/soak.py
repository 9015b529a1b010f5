"""Soak: blast recipients through the sandbox on loopback ports under random faults and random
cancellations, reconcile every recipient, and write the figures to RESULTS.md.

    .venv/bin/python benchmarks/soak.py [--recipients 1000000] [--seconds 600]

Bounded in count and time; stops by itself. Each round uses a fresh fault mix, unique texts
and some invalid recipients, and is reconciled on its own by ``messaging_async.testing.
reconcile`` (the checker the tests use): accepted ⇔ recorded once, with the number and
message id the gateway recorded for that message; rejected / not_sent ⇔ never; unknown ⇔ at
most once. Then the sandbox's records are cleared to keep memory flat.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx

from messaging_async import Outcome, OutcomeStatus, RetryPolicy, Sms
from messaging_async.testing import CHAOS_FAULTS, FakeGateway, Fault, reconcile, serve

RESULTS = Path(__file__).with_name("RESULTS.md")
TIMEOUT = httpx.Timeout(0.3, connect=0.3, pool=2.0)
RETRY = RetryPolicy(
    max_attempts=6, max_elapsed=5.0, backoff_initial=0.0, backoff_max=0.02, cooldown=0.5
)
# What each round picks its fault mix from. A new sandbox fault joins the soak by being added
# here, with a CAUSES line for the reason its unknown outcomes carry. CLOSE: the request
# processed, the connection dropped with no answer.
FAULTS: tuple[Fault, ...] = (*CHAOS_FAULTS, Fault.CLOSE)
# Every IDLE_EVERY-th round the server also closes keep-alive connections idle longer than a
# random fraction of a second, well inside the client's keep-alive expiry: stale
# connections race with the next request, as behind a short server keep-alive timeout.
IDLE_EVERY, IDLE_CLOSE_AFTER = 4, (0.05, 0.5)
# Every INVALID_EVERY-th recipient is a number no gateway takes: it must end `rejected`.
INVALID_EVERY = 97
# Every SMSCOMMY_EVERY-th round goes through sms.com.my (one request per message, seqno
# retries), with SMSCOMMY_SHARE of the round size.
SMSCOMMY_EVERY, SMSCOMMY_SHARE = 3, 0.25
# What an unknown outcome's reason says about the fault behind it.
CAUSES = [
    ("cancelled", "cancellation"),
    ("ReadTimeout|SocketTimeoutError", "hang or slow answer"),
    ("HTTP 502", "502 page"),
    ("HTTP 503", "503 page"),
    ("unrecognised answer", "truncated or non-JSON body"),
    (
        "ReadError|RemoteProtocolError|ServerDisconnectedError|ClientOSError|ClientPayloadError",
        "reset, or closed with no answer, after the request",
    ),
    ("WriteError|ConnectionResetError|BrokenPipe", "a connection the server had closed"),
]


class Tally:
    def __init__(self) -> None:
        self.recipients = 0
        self.outcomes: Counter[str] = Counter()
        self.unknown_by_cause: Counter[str] = Counter()
        self.duplicates = 0
        self.unaccounted = 0
        self.mismatches: list[str] = []
        self.cancellations = 0
        self.rounds = 0

    def reconcile(
        self, batch: list[Sms], outcomes: list[Outcome], read: int, fake: FakeGateway
    ) -> None:
        found = reconcile(batch, outcomes, fake.sent, read=read)
        self.duplicates += found.duplicates
        self.unaccounted += found.unaccounted
        self.mismatches.extend(found.mismatches)
        self.outcomes.update(found.counts)
        for outcome in outcomes:
            if outcome.status is OutcomeStatus.UNKNOWN:
                self.unknown_by_cause[_cause(outcome.reason or "")] += 1
        self.recipients += read
        self.rounds += 1

    @property
    def broken(self) -> bool:
        return bool(self.duplicates or self.unaccounted or self.mismatches)


def _cause(reason: str) -> str:
    for pattern, cause in CAUSES:
        if re.search(pattern, reason):
            return cause
    return "other"


def batch_for(round_number: int, size: int) -> list[Sms]:
    """Unique texts (reconcile matches records by text); every INVALID_EVERY-th number is
    one no gateway takes."""
    texts = ("Hi {n}, parcel {r} ready", "Salam {n}, pesanan {r} siap", "您好 {n} 订单 {r}")
    return [
        Sms(
            to="60-not-a-number" if n % INVALID_EVERY == INVALID_EVERY - 1 else _number(n),
            text=texts[n % 3].format(n=n, r=round_number),
        )
        for n in range(size)
    ]


def _number(n: int) -> str:
    return f"601{2 + n % 8}{n % 10_000_000:07d}"


async def one_round(
    fake: FakeGateway, hosts: list[str], tally: Tally, rng: random.Random, number: int, size: int
) -> None:
    fake.clear_faults()
    if number % IDLE_EVERY == 1:
        fake.inject(Fault.IDLE_CLOSE, delay=rng.uniform(*IDLE_CLOSE_AFTER))
    fake.chaos(
        rng.sample(FAULTS, rng.randint(1, len(FAULTS))),
        rate=rng.uniform(0.02, 0.3),
        seed=number,
        delay=0.5,
    )
    smscommy = number % SMSCOMMY_EVERY == SMSCOMMY_EVERY - 1
    batch = batch_for(number, int(size * SMSCOMMY_SHARE) if smscommy else size)
    outcomes: list[Outcome] = []
    read = 0

    def lazily() -> Iterator[Sms]:
        nonlocal read
        for sms in batch:
            read += 1
            yield sms

    backend = "aiohttp" if number % 2 else "httpx"  # both backends, alternately
    settings = {"timeout": TIMEOUT, "retry": RETRY, "max_concurrency": 16, "http_backend": backend}
    client = (
        fake.smscommy_client(base_url=hosts[-1], **settings)
        if smscommy
        else fake.isms_client(sms_base_urls=hosts, **settings)
    )
    cancel_after = rng.uniform(0.05, 1.0) if number % 3 == 0 else None
    async with client:
        with anyio.CancelScope() as scope:
            if cancel_after is not None:
                scope.deadline = anyio.current_time() + cancel_after
            await client.send_sms_bulk(lazily(), on_outcome=outcomes.append)
        if scope.cancelled_caught:
            tally.cancellations += 1
    tally.reconcile(batch, outcomes, read, fake)
    fake.sent.clear()


async def soak(
    recipients: int, seconds: float, round_size: int
) -> tuple[Tally, FakeGateway, float]:
    fake = FakeGateway(isms_credits=10**12, smscommy_credits=10**12)
    tally, rng = Tally(), random.Random(2026)
    started = time.perf_counter()
    async with serve(fake) as first, serve(fake) as second:
        hosts = [_closed_port(), first, second]
        while tally.recipients < recipients and time.perf_counter() - started < seconds:
            await one_round(fake, hosts, tally, rng, tally.rounds, round_size)
            elapsed = time.perf_counter() - started
            print(
                f"\r{tally.recipients:,} recipients, {tally.rounds} rounds, {elapsed:.0f} s",
                end="",
                flush=True,
            )
    print()
    return tally, fake, time.perf_counter() - started


def _closed_port() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def report(tally: Tally, fake: FakeGateway, elapsed: float) -> str:
    faults = ", ".join(f"{kind} {count:,}" for kind, count in fake.faults_applied.most_common())
    unknown = tally.outcomes["unknown"]
    lines = [
        "## Reliability",
        "",
        f"From `make soak` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}): the sandbox on two",
        "loopback ports behind a port that refuses connections, random fault mixes per",
        "round (connections closed before the answer among them), every third round",
        f"cancelled at a random moment, one round in {IDLE_EVERY} with the server closing idle",
        f"keep-alive connections after {IDLE_CLOSE_AFTER[0]}-{IDLE_CLOSE_AFTER[1]} s, one round",
        f"in {SMSCOMMY_EVERY} through sms.com.my (seqno retries), rounds alternating between",
        f"the httpx and aiohttp backends; one recipient in {INVALID_EVERY} an invalid number.",
        "Every outcome is",
        "reconciled with the sandbox's record of that message: number and message id included.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| recipients sent under faults | {tally.recipients:,} "
        f"in {tally.rounds} rounds, {elapsed:.0f} s |",
        f"| outcomes | {', '.join(f'{k} {v:,}' for k, v in sorted(tally.outcomes.items()))} |",
        f"| faults injected, by kind (plus a refusing first host) | {faults} |",
        f"| duplicates caused by our retries (must be 0) | {tally.duplicates} |",
        f"| recipients unaccounted for (must be 0) | {tally.unaccounted} |",
        f"| outcomes contradicting the gateway's record: count, number or id (must be 0) "
        f"| {len(tally.mismatches)} |",
        f"| cancellations survived (cancelled mid-blast, all accounted) | {tally.cancellations} |",
    ]
    for cause, count in tally.unknown_by_cause.most_common():
        lines.append(
            f"| share of `unknown` from {cause} | {count / max(unknown, 1):.1%} ({count:,}) |"
        )
    return "\n".join(lines) + "\n"


def write_section(section: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n"
    text = re.sub(r"## Reliability\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip() + "\n\n"
    RESULTS.write_text(text + section, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--round-size", type=int, default=20_000)
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    args = parser.parse_args()
    logging.getLogger("messaging_async").setLevel(logging.ERROR)  # failovers are the point here
    tally, fake, elapsed = anyio.run(soak, args.recipients, args.seconds, args.round_size)
    section = report(tally, fake, elapsed)
    print(section)
    if not args.no_write:
        write_section(section)
    if tally.broken:
        for line in tally.mismatches[:20]:
            print("mismatch:", line)
        raise SystemExit("a guarantee was broken")


if __name__ == "__main__":
    main()
