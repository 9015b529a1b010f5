"""What every benchmark shares: the gateway process, timing, and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

RESULTS = Path(__file__).with_name("RESULTS.md")
SERVER = Path(__file__).with_name("_gateway_server.py")


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"httpx {httpx.__version__}, {time.strftime('%Y-%m-%d')}"
    )


@contextmanager
def gateway_process() -> Iterator[str]:
    """The benchmark gateway in its own process on 127.0.0.1; yields its base URL."""
    with tempfile.TemporaryDirectory() as folder:
        port_file = Path(folder) / "port"
        process = subprocess.Popen([sys.executable, str(SERVER), str(port_file)])  # noqa: S603
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
