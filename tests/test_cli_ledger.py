"""Issue 14, command line: ``sms blast --job`` resumes, ``report`` reads the ledger,
``webhook serve`` records delivery reports into it; real processes, loopback sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from messaging_async import SqliteLedger
from messaging_async.cli import main
from messaging_async.ledger import JobSummary
from messaging_async.testing import FakeGateway, Fault, WebhookTarget

from .test_cli_interrupt import ids_in, processes, start_blast, wait_for_sends, write_recipients

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
__all__ = ["processes"]  # the fixture, imported for this module's tests

SECRET = "cli-webhook-secret-0123456789"


def summary_of(path: Path, job: str) -> JobSummary:
    async def read() -> JobSummary:
        async with SqliteLedger(path) as ledger:
            return await ledger.summary(job)

    return anyio.run(read)


def test_an_interrupted_journalled_blast_resumes_without_sending_twice(
    tmp_path: Path, sandbox: tuple[FakeGateway, str], processes: list[subprocess.Popen[str]]
) -> None:
    fake, url = sandbox
    fake.inject(Fault.SLOW, times=None, delay=0.1)
    rows = 400
    path, ledger = tmp_path / "r.csv", tmp_path / "ledger.db"
    write_recipients(path, rows)
    job = ("--job", "promo", "--ledger", str(ledger))
    process = start_blast(processes, url, path, "smscommy", "--grace", "60", *job)
    wait_for_sends(fake, process, 30)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    assert "to resume job 'promo', run the same command again" in out
    interrupted = summary_of(ledger, "promo")
    assert interrupted.in_flight == 0  # Ctrl-C leaves the ledger consistent
    assert 30 <= interrupted.outcomes["accepted"] < rows

    fake.clear_faults()
    process = start_blast(processes, url, path, "smscommy", *job)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, (out, err)  # the invalid numbers: not accepted
    sent = Counter(int((m.text or "").rsplit("#", 1)[1]) for m in fake.sent)
    invalid = {row for row in range(rows) if row % 97 == 5}
    assert set(sent) == set(range(rows)) - invalid
    assert max(sent.values()) == 1
    assert sorted(ids_in(tmp_path / "r.not_accepted.csv")) == sorted(invalid)  # from the ledger
    final = summary_of(ledger, "promo")
    assert final.outcomes["accepted"] == rows - len(invalid)

    assert main(["report", "promo", "--ledger", str(ledger), "--csv", str(tmp_path / "o.csv")]) == 0
    lines = (tmp_path / "o.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + rows


def test_report_prints_the_table_and_json(
    tmp_path: Path, sandbox: tuple[FakeGateway, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = sandbox
    ledger = tmp_path / "ledger.db"

    async def blast() -> None:
        async with SqliteLedger(ledger) as store, fake.isms_client(base_url=url, ledger=store) as c:
            await c.send_sms_classic([f"6013{n:07d}" for n in range(7)] + ["12"], "hi", job="j")

    anyio.run(blast)
    assert main(["report", "j", "--ledger", str(ledger)]) == 0
    table = capsys.readouterr().out
    assert "job 'j': 8 recipients" in table
    assert "accepted                     7" in table
    assert "awaiting                     7" in table
    assert main(["report", "j", "--ledger", str(ledger), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["outcomes"]["rejected"] == 1
    assert len(data["records"]) == 8
    assert all("text" not in record for record in data["records"])
    assert main(["report", "nope", "--ledger", str(ledger)]) == 2


def test_webhook_serve_records_reports_into_the_ledger(
    tmp_path: Path, sandbox: tuple[FakeGateway, str], processes: list[subprocess.Popen[str]]
) -> None:
    fake, url = sandbox
    ledger = tmp_path / "ledger.db"
    env = {**os.environ, "MESSAGING_ASYNC_WEBHOOK_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    code = "import sys; from messaging_async.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", code, "webhook", "serve", "--ledger", str(ledger)]
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [*command, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(server)
    assert server.stdout is not None
    line = server.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), line
    base = line.split()[2]

    async def send_and_report() -> int:
        fake.webhook = WebhookTarget(base, token=SECRET)
        async with SqliteLedger(ledger) as store, fake.isms_client(base_url=url, ledger=store) as c:
            await c.send_sms_classic([f"6014{n:07d}" for n in range(12)], "hi", job="w")
        return await fake.deliver_reports()

    posted = anyio.run(send_and_report)
    fake.webhook = None
    assert posted == 12
    assert summary_of(ledger, "w").delivery["delivered"] == 12
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=30)
    assert server.returncode == 130  # the CLI's "interrupted", as for every command
    assert "Traceback" not in err
