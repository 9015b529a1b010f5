"""Ctrl-C and SIGTERM during ``sms blast``, with a real process against the loopback sandbox.

The promise: reading stops, requests in flight finish, the summary is printed, every row
read is either in the sandbox's records or in a written file (exactly once), exit 130.
"""

from __future__ import annotations

import csv
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from messaging_async.testing import SANDBOX_PASSWORD, SANDBOX_USERNAME, FakeGateway, Fault

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CLI = "import sys; from messaging_async.cli import main; sys.exit(main())"


def write_recipients(path: Path, count: int) -> None:
    """Rows with an id the text carries, so the sandbox's records name the row they came
    from; every 97th number is invalid, so some rows end ``rejected``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "phone", "name"])
        for row in range(count):
            phone = "12" if row % 97 == 5 else f"6012{row:07d}"
            writer.writerow([row, phone, f"name{row}"])


def ids_in(path: Path) -> list[int]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [int(row["id"]) for row in csv.DictReader(handle)]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """The CLI processes a test starts; any still running when it ends (a failed
    assertion) is killed, so none outlives the test."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def start_blast(
    processes: list[subprocess.Popen[str]], url: str, path: Path, gateway: str, *extra: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "ISMS_USERNAME": SANDBOX_USERNAME,
        "ISMS_PASSWORD": SANDBOX_PASSWORD,
        "ISMS_BASE_URL": url,
        "SMSCOMMY_USERNAME": SANDBOX_USERNAME,
        "SMSCOMMY_PASSWORD": SANDBOX_PASSWORD,
        "SMSCOMMY_BASE_URL": f"{url}/websmsapi",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-c", CLI, "sms", "blast", str(path), "--text", "Hi {name} #{id}"]
    process = subprocess.Popen(  # noqa: S603 - our own CLI, with arguments we wrote
        [*command, "--gateway", gateway, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    return process


def wait_for_sends(fake: FakeGateway, process: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 120
    while len(fake.sent) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the blast never got going"
        time.sleep(0.02)


def wait_for_line(process: subprocess.Popen[str], start: str) -> str:
    """Read the process's stderr up to the line that starts with ``start`` (at most 120 s)
    and return it. Byte by byte from the pipe: nothing past that line is read ahead into a
    buffer that ``communicate()`` (which reads the pipe itself) would never see."""
    assert process.stderr is not None
    pipe = process.stderr.fileno()
    deadline = time.monotonic() + 120
    read = bytearray()
    while not read.endswith(b"\n") or not read.splitlines()[-1].startswith(start.encode()):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line {start!r} on stderr in 120 s: {read.decode()}"
        if select.select([pipe], [], [], remaining)[0]:
            byte = os.read(pipe, 1)
            assert byte, f"the process ended with no line {start!r}: {read.decode()}"
            read += byte
    return read.decode()


@pytest.mark.parametrize(
    ("gateway", "signum", "rows", "delay", "threshold"),
    [
        ("smscommy", signal.SIGINT, 4000, 0.1, 60),  # one request per message
        ("isms", signal.SIGTERM, 30_000, 0.3, 1000),  # chunks of 50
    ],
)
def test_a_signal_mid_blast_settles_every_row_read_and_exits_130(
    tmp_path: Path,
    sandbox: tuple[FakeGateway, str],
    processes: list[subprocess.Popen[str]],
    gateway: str,
    signum: signal.Signals,
    rows: int,
    delay: float,
    threshold: int,
) -> None:
    fake, url = sandbox
    fake.inject(Fault.SLOW, times=None, delay=delay)  # processed at once, answered later
    path = tmp_path / "r.csv"
    write_recipients(path, rows)
    process = start_blast(processes, url, path, gateway, "--grace", "60")
    wait_for_sends(fake, process, threshold)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert f"{signum.name}: reading no more rows" in err

    read = int(
        re.findall(rf"interrupted by {signum.name}: read ([\d,]+) of", out)[0].replace(",", "")
    )
    assert threshold <= read < rows  # stopped mid-file, not at its end
    sent = [int(re.findall(r"#(\d+)$", message.text or "")[0]) for message in fake.sent]
    not_accepted = ids_in(tmp_path / "r.not_accepted.csv")
    unknown = ids_in(tmp_path / "r.unknown.csv")
    # Every row read is accounted for exactly once, and nothing unread was sent.
    accounted = sent + not_accepted + unknown
    assert sorted(accounted) == list(range(read))
    assert unknown == []  # the requests in flight were let finish: none was cut off
    assert all(row % 97 == 5 for row in not_accepted)  # only the invalid numbers
    counts = dict(re.findall(r"^(accepted|rejected|not_sent|unknown)\s+([\d,]+)$", out, re.M))
    assert int(counts["accepted"].replace(",", "")) == len(sent)
    assert int(counts["rejected"].replace(",", "")) == len(not_accepted)
    assert f"{len(not_accepted):,} rows written to" in out


def test_a_second_signal_stops_at_once_and_still_accounts_for_every_row(
    tmp_path: Path, sandbox: tuple[FakeGateway, str], processes: list[subprocess.Popen[str]]
) -> None:
    fake, url = sandbox
    fake.inject(Fault.SLOW, times=None, delay=30.0)  # requests in flight would take 30 s
    path = tmp_path / "r.csv"
    write_recipients(path, 2000)
    process = start_blast(processes, url, path, "smscommy", "--grace", "600")
    wait_for_sends(fake, process, 10)  # all ten concurrent requests are in flight
    process.send_signal(signal.SIGINT)
    # The second only once the first was handled: two signals sent while a loaded machine
    # has not scheduled the process yet are one pending signal to the kernel.
    first = wait_for_line(process, "SIGINT: reading no more rows")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=60)
    err = first + err
    assert time.monotonic() - started < 25  # did not wait for the slow answers
    assert process.returncode == 130, (out, err)
    assert "again: stopping now" in err
    read = int(re.findall(r"read ([\d,]+) of", out)[0].replace(",", ""))
    sent = {int(re.findall(r"#(\d+)$", message.text or "")[0]) for message in fake.sent}
    not_accepted = ids_in(tmp_path / "r.not_accepted.csv")
    unknown = ids_in(tmp_path / "r.unknown.csv")
    # Cut off in flight: what the sandbox has is reported unknown, never not_sent.
    assert sent <= set(unknown)
    assert sorted(not_accepted + unknown) == list(range(read))
    assert "do not resend these blindly" in out
