"""QA (qa2): ``whatsapp blast --job`` as a real process against the sandbox on 127.0.0.1,
SIGKILLed while requests are in flight, then the same command run again until it ends:
every row exactly one final outcome in the ledger, no number sent twice, ``unknown``
only where a request was in flight at the kill; then ``--resend-unknown`` sends those
rows, and only those, once more."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio

from messaging_async import OutcomeStatus, SqliteLedger
from messaging_async.ledger import LedgerRecord
from messaging_async.testing import (
    SANDBOX_APP_ID,
    SANDBOX_APP_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    SANDBOX_WABA_NUMBER,
    FakeGateway,
    Fault,
)

CLI = "import sys; from messaging_async.cli import main; sys.exit(main())"
COUNT = 120


def records(path: Path) -> list[LedgerRecord]:
    async def read() -> list[LedgerRecord]:
        async with SqliteLedger(path) as ledger:
            return [record async for record in ledger.records("wa")]

    return anyio.run(read)


def command(url: str, csv_path: Path, ledger: Path, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "ISMS_USERNAME": SANDBOX_USERNAME,
        "ISMS_PASSWORD": SANDBOX_PASSWORD,
        "ISMS_BASE_URL": url,
        "ISMS_APP_ID": SANDBOX_APP_ID,
        "ISMS_APP_SECRET": SANDBOX_APP_SECRET,
        "ISMS_WABA_NUMBER": SANDBOX_WABA_NUMBER,
    }
    argv = [sys.executable, "-c", CLI, "whatsapp", "blast", str(csv_path), "otp"]
    argv += ["--param-column", "code", "--job", "wa", "--ledger", str(ledger)]
    argv += ["--concurrency", "4", *extra]
    return subprocess.Popen(  # noqa: S603 - our own CLI, with arguments we wrote
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_killed_whatsapp_blast_resumed_sends_each_number_once(
    sandbox: tuple[FakeGateway, str], tmp_path: Path
) -> None:
    fake, url = sandbox
    path, ledger = tmp_path / "r.csv", tmp_path / "l.db"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "code"])
        writer.writerows([f"6012{row:07d}", f"{row:06d}"] for row in range(COUNT))
    fake.inject(Fault.SLOW, times=None, delay=0.3)  # processed, then answered late
    kills, in_flight = 0, set[str]()
    for _ in range(3):
        process = command(url, path, ledger)
        deadline = time.monotonic() + 120
        before = len(fake.sent)
        while len(fake.sent) < before + 6 and process.poll() is None:
            assert time.monotonic() < deadline, "the blast never got going"
            time.sleep(0.01)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=120)
        in_flight |= {r.recipient for r in records(ledger) if r.outcome is None}
    assert kills >= 2
    assert in_flight
    fake.clear_faults()
    process = command(url, path, ledger)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err  # the unknowns: not accepted
    assert "Traceback" not in err
    found = records(ledger)
    sent = Counter(m.to for m in fake.sent if m.gateway == "whatsapp")
    assert len(found) == COUNT
    assert {r.recipient for r in found} == {f"6012{row:07d}" for row in range(COUNT)}
    assert max(sent.values()) == 1  # no number sent twice
    unknown = {r.recipient for r in found if r.outcome is OutcomeStatus.UNKNOWN}
    assert unknown
    assert unknown <= in_flight
    assert {r.outcome for r in found} == {OutcomeStatus.ACCEPTED, OutcomeStatus.UNKNOWN}
    accepted = {r.recipient for r in found if r.outcome is OutcomeStatus.ACCEPTED}
    assert accepted <= set(sent)
    assert set(sent) - accepted <= in_flight  # sent, the answer lost to a kill
    # (a row claimed by a killed run may never have reached the sandbox: unknown all
    # the same, as nobody can tell)
    # the not-accepted files of the resumed run: the unknown rows, from the ledger
    with (tmp_path / "r.unknown.csv").open(encoding="utf-8", newline="") as handle:
        assert {row["phone"] for row in csv.DictReader(handle)} == unknown
    # --resend-unknown: those rows once more, and nothing else
    before = len(fake.sent)
    process = command(url, path, ledger, "--resend-unknown")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert sorted(m.to for m in fake.sent[before:]) == sorted(unknown)
    assert {r.outcome for r in records(ledger)} == {OutcomeStatus.ACCEPTED}


def test_a_whatsapp_blast_interrupted_then_run_again_sends_each_number_once(
    sandbox: tuple[FakeGateway, str], tmp_path: Path
) -> None:
    """Ctrl-C (a real SIGINT) mid-blast: exit 130, the summary says how to resume; the same
    command then finishes the job, and the sandbox has each number exactly once."""
    fake, url = sandbox
    path, ledger = tmp_path / "r.csv", tmp_path / "l.db"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "code"])
        writer.writerows([f"6012{row:07d}", f"{row:06d}"] for row in range(COUNT))
    fake.inject(Fault.SLOW, times=None, delay=0.05)
    process = command(url, path, ledger)
    deadline = time.monotonic() + 120
    while len(fake.sent) < 8:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the blast never got going"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "to resume job 'wa', run the same command again" in out
    assert len(fake.sent) < COUNT
    fake.clear_faults()
    process = command(url, path, ledger)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert Counter(m.to for m in fake.sent) == Counter(f"6012{row:07d}" for row in range(COUNT))
