"""Callbacks per second and server CPU per callback: ``WebhookReceiver`` served by uvicorn,
next to the floor of any receiver (a bare ASGI app that checks the token and parses the same
query or form body with the standard library) and a FastAPI endpoint doing the same token
check and parsing, each at saturation on one core: each server in its own process pinned to
one core, wrk pinned to the other (``_wrk.py``), in interleaved rounds (each round runs every
server once per callback kind, so CPU stolen by the machine's neighbours falls on all of them
alike), on asyncio and on uvloop (what ``uvicorn[standard]`` serves on).

    .venv/bin/python benchmarks/webhooks.py [--seconds 3] [--rounds 3] [--loop asyncio|uvloop]
    .venv/bin/python benchmarks/webhooks.py --stages   # in-process µs per stage, no server
    .venv/bin/python benchmarks/webhooks.py --compare ../main  # the receiver, before / after

Why saturation: the aiohttp client this script used before (``--driver aiohttp``, kept)
tops out near 8,000 callbacks/s on this machine, below what one core of any of the three
servers serves, so its callbacks/s was the client's limit, and each server, idle half the
time, paid an epoll wake-up per request that all three share and that flattened the ratios.
A server whose core is kept busy shows what one core of it can serve.

``--stages`` calls the app in this process, on asyncio as uvicorn runs it (each call in a
task of its own), with no HTTP in between: µs per callback for answers that stop at
successive stages (401 after the token, 404 after the route look-up, 200 after parsing and
the handler), for comparing two commits (``PYTHONPATH=<other clone> … --stages``) in the
same minute.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _wrk
import aiohttp
import anyio
import uvicorn
from _common import RESULTS, machine, write_section

SERVER = Path(__file__).with_name("_webhook_server.py")
TOKEN = "benchmark-token-0123456789"
CONCURRENCY = 16
LOOPS = ("asyncio", "uvloop")
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
def webhook_process(
    server: str, loop: str, code: str | None = None, core: int | None = None
) -> Iterator[tuple[str, int]]:
    """A server process on ``loop``; ``code``: a checkout whose ``messaging_async`` it
    imports; ``core``: the one CPU it may run on."""
    env = None if code is None else {**os.environ, "PYTHONPATH": code}
    with tempfile.TemporaryDirectory() as folder:
        port_file = Path(folder) / "port"
        command = [sys.executable, str(SERVER), server, str(port_file), loop]
        if core is not None:
            command = ["taskset", "-c", str(core), *command]
        process = subprocess.Popen(command, env=env)  # noqa: S603
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {server} server did not start")
                time.sleep(0.05)
            port, running = port_file.read_text().split()
            assert running.startswith(loop), (loop, running)  # asyncio.… or uvloop.Loop
            yield f"http://127.0.0.1:{port}", process.pid
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


# (callbacks per second, server CPU µs per callback, the client's CPU share) of one run: a
# client near 100% of a core may be the limit.
Run = tuple[float, float, float]


def measure(url: str, pid: int, kind: str, count: int, first: int) -> Run:
    """One aiohttp run (the client in this process)."""
    cpu, own, started = cpu_seconds(pid), time.process_time(), time.perf_counter()
    ok = anyio.run(drive, url, kind, count, first)
    elapsed, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    assert ok == count, (url, kind, ok)
    return ok / elapsed, used / ok * 1e6, (time.process_time() - own) / elapsed


def measure_wrk(url: str, pid: int, kind: str, seconds: int, first: int) -> Run:
    """One wrk run."""
    cpu = cpu_seconds(pid)
    answered, elapsed, client = _wrk.run(url, request_of(kind, _wrk.MARK), seconds, first)
    return answered / elapsed, (cpu_seconds(pid) - cpu) / answered * 1e6, client / elapsed


@dataclass(frozen=True)
class Driver:
    """What sends the callbacks: ``run(url, pid, kind, first)`` measures one run (ids from
    ``first``), ``warm_up(url, pid, kind)`` a short one; ``core``: the servers' CPU."""

    run: Callable[[str, int, str, int], Run]
    warm_up: Callable[[str, int, str], object]
    core: int | None
    about: str


def driver_of(name: str, seconds: int, callbacks: int) -> Driver:
    """The wrk driver (exits with the reason when this machine cannot run it), or aiohttp."""
    if name == "aiohttp":
        return Driver(
            run=lambda url, pid, kind, first: measure(url, pid, kind, callbacks, first),
            warm_up=lambda url, _, kind: anyio.run(drive, url, kind, 200, 10**8),
            core=None,
            about=f"driver: an aiohttp client, {callbacks:,} callbacks of each kind per server "
            f"per round, {CONCURRENCY} at a time, sharing the machine's cores with the servers "
            "(callbacks/s can be the client's limit as much as the server's)",
        )
    if (reason := _wrk.missing()) is not None:
        sys.exit(f"webhooks.py: {reason}; `--driver aiohttp` measures without wrk")
    for kind in KINDS:  # wrk sends what request_of() builds, each id once
        _wrk.check(functools.partial(request_of, kind))
    return Driver(
        run=lambda url, pid, kind, first: measure_wrk(url, pid, kind, seconds, first),
        warm_up=lambda url, pid, kind: measure_wrk(url, pid, kind, 1, 9 * 10**8),
        core=_wrk.cores()[0],
        about=f"driver: {_wrk.version()} (1 thread, {_wrk.CONNECTIONS} keep-alive connections, "
        "each callback its own id, every answer checked to be a 200) pinned to one core, each "
        f"server pinned to another; {seconds} s per run after a 1 s warm-up per server and "
        "kind. At saturation callbacks/s is what one core of the server serves",
    )


def best_of(
    servers: dict[str, tuple[str, int]], driver: Driver, rounds: int
) -> tuple[dict[tuple[str, str], tuple[float, float, float]], float]:
    """Best (callbacks/s, server CPU µs per callback) of each server and kind over
    interleaved rounds with the server's CPU share in its fastest run (near 100%: its core
    was saturated, and nothing else took it), and the client's highest CPU share in a run."""
    for kind in KINDS:
        for url, pid in servers.values():
            driver.warm_up(url, pid, kind)
    best: dict[tuple[str, str], tuple[float, float, float]] = {}
    client_most = 0.0
    for round_ in range(rounds):
        for kind in KINDS:
            for name, (url, pid) in servers.items():
                rate, cpu, client = driver.run(url, pid, kind, round_ * 10**8)
                old = best.get((kind, name), (0.0, float("inf"), 0.0))
                busy = rate * cpu / 1e6 if rate > old[0] else old[2]
                best[kind, name] = (max(old[0], rate), min(old[1], cpu), busy)
                client_most = max(client_most, client)
                print(
                    f"round {round_} {kind} {name}: {rate:,.0f}/s {cpu:,.1f} µs, server "
                    f"{rate * cpu / 1e6:.0%} busy, client {client:.0%}",
                    flush=True,
                )
    return best, client_most


def table(best: dict[tuple[str, str], tuple[float, float, float]]) -> str:
    """The callbacks/s and CPU table of one loop, and the ratios with their targets."""
    rows = [
        "| callback | server | callbacks/s | server CPU µs/callback | server's CPU share |",
        "|---|---|---:|---:|---:|",
    ]
    ratios = [
        "| callback | receiver / floor, callbacks/s | by server CPU | target "
        "| receiver / FastAPI, callbacks/s | by server CPU | target |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for kind in KINDS:
        for name, label in SERVERS.items():
            rate, cpu, busy = best[kind, name]
            rows.append(f"| {kind} | {label} | {rate:,.0f} | {cpu:,.1f} | {busy:.0%} |")
        (ours, our_cpu, _), floor, fastapi = (best[kind, name] for name in SERVERS)
        # By CPU: callbacks one core could serve, 1 / (CPU per callback), as a ratio.
        by_rate = (ours / floor[0], ours / fastapi[0])
        by_cpu = (floor[1] / our_cpu, fastapi[1] / our_cpu)
        ratios.append(
            f"| {kind} | {by_rate[0]:.2f} | {by_cpu[0]:.2f} | ≥ 0.8: "
            f"{'met' if min(by_rate[0], by_cpu[0]) >= 0.8 else 'NOT met'} "
            f"| {by_rate[1]:.2f} | {by_cpu[1]:.2f} | ≥ 2: "
            f"{'met' if min(by_rate[1], by_cpu[1]) >= 2 else 'NOT met'} |"
        )
    return "\n".join(rows) + "\n\n" + "\n".join(ratios)


def loop_about(loop: str) -> str:
    """The heading of one loop's tables."""
    if loop == "uvloop":
        return f"**uvloop** {version('uvloop')} (`uvloop.run`: what `uvicorn[standard]` serves on)"
    return "**asyncio** (`asyncio.run`: a plain install)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="per wrk run")
    parser.add_argument("--callbacks", type=int, default=3_000, help="per aiohttp run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop", choices=LOOPS, help="the servers' loop (default: both)")
    parser.add_argument("--driver", choices=("wrk", "aiohttp"), default="wrk")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--compare", metavar="CHECKOUT", help="the receiver at CHECKOUT too")
    args = parser.parse_args()
    if args.stages:
        from _webhook_stages import stages

        stages()
        return
    driver = driver_of(args.driver, args.seconds, args.callbacks)
    loops = (args.loop,) if args.loop else LOOPS
    if args.compare:
        for loop in loops:
            compare(args.compare, loop, driver, args.rounds)
        return
    tables = []
    for loop in loops:
        with ExitStack() as stack:
            servers = {
                name: stack.enter_context(webhook_process(name, loop, core=driver.core))
                for name in SERVERS
            }
            best, client = best_of(servers, driver, args.rounds)
        tables.append(
            f"{loop_about(loop)}; the client's CPU at most {client:.0%} of a core in a run:"
            f"\n\n{table(best)}"
        )
    body = (
        f"Best of {args.rounds} interleaved rounds (each round runs every server once per "
        f"callback kind); uvicorn {uvicorn.__version__} with httptools, one worker per server, "
        f"each its own process. {machine()}; {driver.about}. Server CPU per callback is each "
        "server's own cost, and its ratio (the floor's or FastAPI's CPU over the receiver's) "
        "compares what one core could serve. The server's CPU share is its CPU time over "
        "the wall time of its fastest run: near 100%, its core was saturated; lower, "
        "something else took the core (the machine is shared) or the client was the limit. "
        "A target is met when both ratios meet it.\n\n" + "\n\n".join(tables)
    )
    print(body)
    if not args.no_write:
        write_section("Webhook callbacks", body + kept_subsections("Webhook callbacks"))


def compare(code: str, loop: str, driver: Driver, rounds: int) -> None:
    """Callbacks/s and server CPU µs per callback of the receiver at ``code`` (another
    checkout, e.g. main) and of this one, beside the floor and FastAPI, in the same
    interleaved rounds: the before / after of a change, measured in the same minutes.
    Printed, not written."""
    with ExitStack() as stack:
        before = webhook_process("receiver", loop, code, core=driver.core)
        servers = {"receiver, before": stack.enter_context(before)}
        for name in SERVERS:
            servers[name] = stack.enter_context(webhook_process(name, loop, core=driver.core))
        best, _ = best_of(servers, driver, rounds)
    print(
        f"\n{loop_about(loop)}, server CPU µs per callback (callbacks/s):\n\n"
        "| callback | receiver, before | receiver, after | floor | FastAPI "
        "| floor / receiver: before → after | FastAPI / receiver: before → after |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    for kind in KINDS:
        (before_rate, before, _), (after_rate, after, _) = (
            best[kind, name] for name in ("receiver, before", "receiver")
        )
        floor, fastapi = best[kind, "bare"][1], best[kind, "fastapi"][1]
        print(
            f"| {kind} | {before:.1f} ({before_rate:,.0f}/s) | {after:.1f} ({after_rate:,.0f}/s) "
            f"| {floor:.1f} | {fastapi:.1f} | {floor / before:.2f} → {floor / after:.2f} "
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
