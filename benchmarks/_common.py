"""What every benchmark shares: the gateway process, timing, and RESULTS.md sections."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).with_name("RESULTS.md")
SERVER = Path(__file__).with_name("_gateway_server.py")


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"httpx {httpx.__version__}, {time.strftime('%Y-%m-%d')}"
    )


@contextmanager
def gateway_process(delay: float = 0.0) -> Iterator[str]:
    """The benchmark gateway in its own process on 127.0.0.1; yields its base URL. ``delay``:
    seconds it takes to answer each send (a real gateway's latency)."""
    with tempfile.TemporaryDirectory() as folder:
        port_file = Path(folder) / "port"
        command = [sys.executable, str(SERVER), str(port_file), str(delay)]
        process = subprocess.Popen(command)  # noqa: S603
        try:
            deadline = time.monotonic() + 10
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the benchmark gateway did not start")
                time.sleep(0.02)
            yield f"http://127.0.0.1:{port_file.read_text()}"
        finally:
            process.terminate()
            process.wait(10)


def server_cpu(url: str) -> float:
    return float(httpx.get(f"{url}/cpu").text)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def write_section(title: str, body: str) -> None:
    """Replace the ``## title`` section of RESULTS.md (or add it)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    text = re.sub(rf"\n## {re.escape(title)}\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip()
    RESULTS.write_text(f"{text}\n\n## {title}\n\n{body.rstrip()}\n", encoding="utf-8")


def time_requests(client: Any, latencies: list[float]) -> None:
    """Record each HTTP exchange's latency inside an SDK client, whatever its backend.

    Benchmark instrumentation only: it wraps the client's private exchange, the one place
    every request passes, at the cost of one ``perf_counter`` pair per request.
    """
    exchange = client._transport._exchange
    post = exchange.post

    async def timed(url: str, content: bytes, content_type: str, *phases: Any) -> Any:
        started = time.perf_counter()
        try:
            return await post(url, content, content_type, *phases)
        finally:
            latencies.append(time.perf_counter() - started)

    exchange.post = timed


Run = Callable[[list[float]], Awaitable[None]]


def measure_rounds(
    url: str, variants: dict[str, tuple[Run, int, int]], rounds: int
) -> dict[str, dict[str, float]]:
    """Each variant ``rounds`` times, interleaved (a, b, c, a, b, c…), keeping each one's
    fastest round: this machine's neighbours steal CPU in bursts, and interleaving spreads
    a burst over the variants instead of sinking one of them."""
    best: dict[str, dict[str, float]] = {}
    for round_number in range(rounds):
        for name, (run, recipients, requests) in variants.items():
            figures = measure(url, run, recipients, requests)
            print(round_number + 1, name, {k: round(v, 1) for k, v in figures.items()}, flush=True)
            if name not in best or figures["msg/s"] > best[name]["msg/s"]:
                best[name] = figures
    return best


def measure(url: str, run: Run, recipients: int, requests: int) -> dict[str, float]:
    """Throughput, this process's CPU per message, the gateway's CPU share and latencies."""
    import anyio

    latencies: list[float] = []
    cpu_before, server_before, started = time.process_time(), server_cpu(url), time.perf_counter()
    anyio.run(run, latencies)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    return {
        "msg/s": recipients / elapsed,
        "req/s": requests / elapsed,
        "client µs/msg": cpu / recipients * 1e6,
        "server CPU %": (server_cpu(url) - server_before) / elapsed * 100,
        "p50 ms": percentile(latencies, 0.5) * 1e3,
        "p99 ms": percentile(latencies, 0.99) * 1e3,
    }


def verdict(label: str, ratio: float, target: float) -> str:
    mark = "met" if ratio >= target else "NOT met"
    return f"| {label} | {ratio:.2f} | ≥ {target:g} | {mark} |"


def measure_in_child(script: str, count: int) -> dict[str, float]:
    """Run ``script --child COUNT`` in a fresh interpreter (so its peak memory is its own)
    and return the JSON figures it prints; its ``accepted`` must be ``count``."""
    output = subprocess.run(  # noqa: S603 - one of our own scripts, as a child
        [sys.executable, script, "--child", str(count)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = json.loads(output)
    assert figures["accepted"] == count
    return figures
