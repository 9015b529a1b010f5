"""Delivery-report callbacks per second: ``WebhookReceiver`` served by uvicorn, next to a
FastAPI endpoint doing the same token check and parsing, each in its own process, driven by
an aiohttp client (fast enough not to be the bottleneck).

    .venv/bin/python benchmarks/webhooks.py [--callbacks 5000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import anyio
from _common import machine, write_section

SERVER = Path(__file__).with_name("_webhook_server.py")
TOKEN = "benchmark-token-0123456789"
CONCURRENCY = 16


@contextmanager
def webhook_process(kind: str) -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as folder:
        port_file = Path(folder) / "port"
        process = subprocess.Popen([sys.executable, str(SERVER), kind, str(port_file)])  # noqa: S603
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {kind} server did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port_file.read_text()}", process.pid
        finally:
            process.terminate()
            process.wait(10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, count: int) -> int:
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    ok = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def callback(n: int) -> None:
            nonlocal ok
            async with limiter:
                params = {"token": TOKEN, "MsgId": str(n), "Sender": "60111111111", "Status": "6"}
                async with session.get(f"{url}/smscommy/delivery", params=params) as response:
                    ok += response.status == 200

        async with anyio.create_task_group() as tasks:
            for n in range(count):
                tasks.start_soon(callback, n)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=5_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = ["| server | callbacks/s | server CPU µs/callback |", "|---|---:|---:|"]
    for kind, label in (
        ("receiver", "WebhookReceiver (plain ASGI)"),
        ("fastapi", "FastAPI endpoint, same parsing"),
    ):
        with webhook_process(kind) as (url, pid):
            anyio.run(drive, url, 200)  # warm up
            cpu, started = cpu_seconds(pid), time.perf_counter()
            ok = anyio.run(drive, url, args.callbacks)
            elapsed, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
        assert ok == args.callbacks, (kind, ok)
        rows.append(f"| {label} | {ok / elapsed:,.0f} | {used / ok * 1e6:,.0f} |")
        print(rows[-1], flush=True)
    body = (
        f"{args.callbacks:,} sms.com.my delivery reports, {CONCURRENCY} at a time, uvicorn with "
        f"httptools, one worker each. {machine()}.\n\n" + "\n".join(rows)
    )
    print(body)
    if not args.no_write:
        write_section("Webhook callbacks", body)


if __name__ == "__main__":
    main()
