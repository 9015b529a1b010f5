"""Callbacks per second and server CPU per callback: ``WebhookReceiver`` served by uvicorn,
next to the floor of any receiver (a bare ASGI app that checks the token and parses the same
query or form body with the standard library) and a FastAPI endpoint doing the same token
check and parsing. Each server runs in its own process, driven by an aiohttp client (fast
enough not to be the bottleneck), in interleaved rounds: each round runs every server once
per callback kind, so CPU stolen by the machine's neighbours falls on all of them alike.

    .venv/bin/python benchmarks/webhooks.py [--callbacks 3000] [--rounds 3]
    .venv/bin/python benchmarks/webhooks.py --stages   # in-process µs per stage, no server
    .venv/bin/python benchmarks/webhooks.py --compare ../main  # server CPU, before / after

``--stages`` calls the app in this process, on asyncio as uvicorn runs it (each call in a
task of its own), with no HTTP in between: µs per callback for answers that stop at
successive stages (401 after the token, 404 after the route look-up, 200 after parsing and
the handler), for comparing two commits (``PYTHONPATH=<other clone> … --stages``) in the
same minute.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from _common import RESULTS, machine, write_section

SERVER = Path(__file__).with_name("_webhook_server.py")
TOKEN = "benchmark-token-0123456789"
CONCURRENCY = 16
SERVERS = {
    "receiver": "WebhookReceiver (plain ASGI)",
    "bare": "bare ASGI app, stdlib parsing (floor)",
    "fastapi": "FastAPI endpoint, same parsing",
}
MESSAGE = {
    "from": "60123456789",
    "to": "60111111111",
    "messageId": "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTdCNjE2",
    "type": "text",
    "text": {"body": "Hi, is my order MY-1042 on its way?"},
    "timestamp": "1732230000",
}


def request_of(kind: str, n: int) -> dict[str, Any]:
    """aiohttp ``request`` arguments for the ``n``th callback of ``kind`` (ids all differ)."""
    if kind == "smscommy delivery":
        params = {"token": TOKEN, "MsgId": str(n), "Sender": "60111111111", "Status": "6"}
        return {"method": "GET", "url": "/smscommy/delivery", "params": params}
    if kind == "isms delivery":
        params = {"token": TOKEN, "sms_id": str(n), "dstno": "60123456789", "status": "DELIVRD"}
        return {"method": "GET", "url": "/isms/delivery", "params": params}
    payload = json.dumps({**MESSAGE, "messageId": f"wamid.{n}"}).encode()
    form = {"response": base64.b64encode(payload).decode()}
    return {"method": "POST", "url": "/isms/whatsapp", "params": {"token": TOKEN}, "data": form}


KINDS = ("smscommy delivery", "isms delivery", "isms whatsapp (form)")


@contextmanager
def webhook_process(server: str, code: str | None = None) -> Iterator[tuple[str, int]]:
    """A server process; ``code``: a checkout whose ``messaging_async`` it imports."""
    env = None if code is None else {**os.environ, "PYTHONPATH": code}
    with tempfile.TemporaryDirectory() as folder:
        port_file = Path(folder) / "port"
        command = [sys.executable, str(SERVER), server, str(port_file)]
        process = subprocess.Popen(command, env=env)  # noqa: S603
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {server} server did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port_file.read_text()}", process.pid
        finally:
            process.terminate()
            process.wait(10)


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far: the scheduler's own count in nanoseconds (every
    thread's ``schedstat``), where the kernel keeps one; else ``stat``'s clock ticks, which
    are 10 ms each: ±1 tick is ±5% of a 4,000-callback run."""
    try:
        return (
            sum(
                int(Path(task, "schedstat").read_text().split()[0])
                for task in Path(f"/proc/{pid}/task").iterdir()
            )
            / 1e9
        )
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, kind: str, count: int, first: int) -> int:
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    ok = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def callback(n: int) -> None:
            nonlocal ok
            async with limiter, session.request(**request_of(kind, n)) as response:
                ok += response.status == 200

        async with anyio.create_task_group() as tasks:
            for n in range(first, first + count):
                tasks.start_soon(callback, n)
    return ok


def measure(url: str, pid: int, kind: str, count: int, first: int) -> tuple[float, float]:
    """(callbacks per second, server CPU µs per callback) of one run."""
    cpu, started = cpu_seconds(pid), time.perf_counter()
    ok = anyio.run(drive, url, kind, count, first)
    elapsed, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    assert ok == count, (url, kind, ok)
    return ok / elapsed, used / ok * 1e6


Case = tuple[str, Any, Callable[[int], dict[str, Any]], bytes]


def stage_cases() -> list[Case]:
    """(label, app, the nth callback's scope, body) of each in-process case."""
    from urllib.parse import urlencode

    from _webhook_server import bare_app, on_event

    from messaging_async.hooks import BaseHooks
    from messaging_async.webhooks import MemoryDeduplicator, WebhookReceiver

    def receiver(**options: Any) -> Any:
        return WebhookReceiver(secret=TOKEN, on_delivery=on_event, on_whatsapp=on_event, **options)

    def scope(
        kind: str, wrong_token: bool = False, **changes: Any
    ) -> Callable[[int], dict[str, Any]]:
        def nth(n: int) -> dict[str, Any]:
            request = request_of(kind, n)
            query = urlencode(request["params"]).encode()
            if wrong_token:
                query = query.replace(TOKEN.encode(), b"x" * len(TOKEN))
            return {
                "type": "http",
                "method": request["method"],
                "path": "/hooks" + request["url"],
                "root_path": "/hooks",
                "query_string": query,
                "headers": [
                    (b"host", b"127.0.0.1:8000"),
                    (b"user-agent", b"Python/3.11 aiohttp/3.14"),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                ],
                "client": ("127.0.0.1", 50000),
                **changes,
            }

        return nth

    form = urlencode(request_of("isms whatsapp (form)", 1)["data"]).encode()
    plain, sms = receiver(), "smscommy delivery"
    return [
        ("401 (token checked, answered)", plain, scope(sms, wrong_token=True), b""),
        ("404 (token, route look-up)", plain, scope(sms, path="/hooks/nowhere"), b""),
        ("200 smscommy delivery", plain, scope(sms), b""),
        ("200 isms delivery", plain, scope("isms delivery"), b""),
        ("200 isms whatsapp (form)", plain, scope("isms whatsapp (form)"), form),
        (
            "200 smscommy delivery, MemoryDeduplicator",
            receiver(dedupe=MemoryDeduplicator()),
            scope(sms),
            b"",
        ),
        ("200 smscommy delivery, hooks listening", receiver(hooks=BaseHooks()), scope(sms), b""),
        (
            "floor: bare app, smscommy delivery",
            bare_app,
            scope(sms, path="/smscommy/delivery"),
            b"",
        ),
        (
            "floor: bare app, isms whatsapp (form)",
            bare_app,
            scope("isms whatsapp (form)", path="/isms/whatsapp"),
            form,
        ),
    ]


def stages(repeats: int = 15, number: int = 2_000) -> None:
    """Best µs per in-process call of each case, the cases interleaved round by round;
    every call a different message id (a de-duplicator sees each once)."""
    import asyncio

    cases = stage_cases()

    async def run(app: Any, scopes: list[dict[str, Any]], body: bytes) -> float:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        started = time.perf_counter()
        for scope in scopes:  # each in a task of its own, as uvicorn runs them
            await asyncio.create_task(app(scope, receive, send))
        return time.perf_counter() - started

    async def measure_all() -> list[float]:
        best = [float("inf")] * len(cases)
        for round_ in range(repeats):
            for index, (_, app, nth, body) in enumerate(cases):
                scopes = [nth(n) for n in range(round_ * number, (round_ + 1) * number)]
                best[index] = min(best[index], await run(app, scopes, body))
        return best

    best = asyncio.run(measure_all())
    for (label, *_), seconds in zip(cases, best, strict=True):
        print(f"| {label} | {seconds / number * 1e6:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--compare", metavar="CHECKOUT", help="the receiver at CHECKOUT too")
    args = parser.parse_args()
    if args.stages:
        stages()
        return
    if args.compare:
        compare(args.compare, args.rounds, args.callbacks)
        return
    best: dict[tuple[str, str], tuple[float, float]] = {}
    with ExitStack() as stack:
        servers = {name: stack.enter_context(webhook_process(name)) for name in SERVERS}
        for kind in KINDS:
            for url, _ in servers.values():
                anyio.run(drive, url, kind, 200, 10**8)  # warm up
        for round_ in range(args.rounds):
            for kind in KINDS:
                for name, (url, pid) in servers.items():
                    first = round_ * args.callbacks
                    rate, cpu = measure(url, pid, kind, args.callbacks, first)
                    old = best.get((kind, name), (0.0, float("inf")))
                    best[kind, name] = (max(old[0], rate), min(old[1], cpu))
                    print(f"round {round_} {kind} {name}: {rate:,.0f}/s {cpu:,.0f} µs", flush=True)
    rows = [
        "| callback | server | callbacks/s | server CPU µs/callback |",
        "|---|---|---:|---:|",
    ]
    ratios = [
        "| callback | receiver / floor, callbacks/s | by server CPU | target "
        "| receiver / FastAPI, callbacks/s | by server CPU | target |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for kind in KINDS:
        for name, label in SERVERS.items():
            rate, cpu = best[kind, name]
            rows.append(f"| {kind} | {label} | {rate:,.0f} | {cpu:,.0f} |")
        (ours, our_cpu), floor, fastapi = (best[kind, name] for name in SERVERS)
        # By CPU: callbacks one core could serve, 1 / (CPU per callback), as a ratio.
        by_rate = (ours / floor[0], ours / fastapi[0])
        by_cpu = (floor[1] / our_cpu, fastapi[1] / our_cpu)
        ratios.append(
            f"| {kind} | {by_rate[0]:.2f} | {by_cpu[0]:.2f} | ≥ 0.8: "
            f"{'met' if min(by_rate[0], by_cpu[0]) >= 0.8 else 'NOT met'} "
            f"| {by_rate[1]:.2f} | {by_cpu[1]:.2f} | ≥ 2: "
            f"{'met' if min(by_rate[1], by_cpu[1]) >= 2 else 'NOT met'} |"
        )
    body = (
        f"{args.callbacks:,} callbacks of each kind per server per round, {CONCURRENCY} at a "
        f"time, best of {args.rounds} interleaved rounds; uvicorn with httptools, one worker "
        f"per server, each its own process. {machine()}. The aiohttp client shares the "
        "machine's cores with the servers, so callbacks/s can be the client's limit as much "
        "as the server's; server CPU per callback is each server's own cost, and its ratio "
        "(the floor's or FastAPI's CPU over the receiver's) compares what one core could "
        "serve. A target is met when both ratios meet it.\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(ratios)
    )
    print(body)
    if not args.no_write:
        write_section("Webhook callbacks", body + kept_subsections("Webhook callbacks"))


def compare(code: str, rounds: int, count: int) -> None:
    """Server CPU µs per callback of the receiver at ``code`` (another checkout, e.g. main)
    and of this one, beside the floor and FastAPI, in the same interleaved rounds: the
    before / after of a change, measured in the same minutes. Printed, not written."""
    with ExitStack() as stack:
        servers = {"receiver, before": stack.enter_context(webhook_process("receiver", code))}
        for name in SERVERS:
            servers[name] = stack.enter_context(webhook_process(name))
        for kind in KINDS:
            for url, _ in servers.values():
                anyio.run(drive, url, kind, 200, 10**8)  # warm up
        cpu: dict[tuple[str, str], float] = {}
        for round_ in range(rounds):
            for kind in KINDS:
                for name, (url, pid) in servers.items():
                    _, used = measure(url, pid, kind, count, round_ * count)
                    cpu[kind, name] = min(cpu.get((kind, name), float("inf")), used)
    print(
        "| callback | receiver, before | receiver, after | floor | FastAPI "
        "| floor / receiver: before → after | FastAPI / receiver: before → after |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    for kind in KINDS:
        before, after = cpu[kind, "receiver, before"], cpu[kind, "receiver"]
        floor, fastapi = cpu[kind, "bare"], cpu[kind, "fastapi"]
        print(
            f"| {kind} | {before:.1f} | {after:.1f} | {floor:.1f} | {fastapi:.1f} "
            f"| {floor / before:.2f} → {floor / after:.2f} "
            f"| {fastapi / before:.2f} → {fastapi / after:.2f} |"
        )


def kept_subsections(title: str) -> str:
    """The ``### `` subsections of RESULTS.md's ``## title`` (the before / after per stage
    tables, measured by hand with ``--stages``), so that a new run keeps them."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    section = re.search(rf"\n## {re.escape(title)}\n.*?(?=\n## |\Z)", text, flags=re.S)
    if section is None or "\n### " not in section.group():
        return ""
    return "\n\n" + section.group()[section.group().index("\n### ") + 1 :].rstrip()


if __name__ == "__main__":
    main()
