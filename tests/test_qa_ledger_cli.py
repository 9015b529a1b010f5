"""The ledger on the command line as a new user meets it: a ledger path that is not a
ledger is one clear line (exit 2), never a traceback."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from messaging_async import SqliteLedger
from messaging_async.cli import main
from messaging_async.errors import LedgerError
from messaging_async.testing import FakeGateway, Fault

from .test_cli_interrupt import (
    ids_in,
    processes,
    start_blast,
    wait_for_line,
    wait_for_sends,
    write_recipients,
)

__all__ = ["processes"]  # the fixture, imported for this module's tests


def _bad_ledgers(tmp_path: Path) -> list[Path]:
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("my notes, not a database\n" * 100)
    return [not_sqlite, tmp_path / "no-such-dir" / "ledger.db", tmp_path]


@pytest.mark.anyio
async def test_a_path_that_is_no_ledger_is_a_ledger_error(tmp_path: Path) -> None:
    for path in _bad_ledgers(tmp_path):
        with pytest.raises(LedgerError, match="cannot open the ledger") as caught:
            async with SqliteLedger(path):
                pass
        assert str(path) in str(caught.value)


def test_report_and_blast_on_a_path_that_is_no_ledger_say_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipients = tmp_path / "r.csv"
    recipients.write_text("phone,name\n60123000001,A\n")
    monkeypatch.setenv("ISMS_USERNAME", "sandbox")
    monkeypatch.setenv("ISMS_PASSWORD", "sandbox-password")
    monkeypatch.setenv("ISMS_BASE_URL", "http://127.0.0.1:9")  # never reached: refused first
    blast = ["sms", "blast", str(recipients), "--text", "Hi {name}", "--job", "promo"]
    for path in _bad_ledgers(tmp_path):
        for argv in (
            ["report", "promo", "--ledger", str(path)],
            [*blast, "--ledger", str(path)],
        ):
            if argv[0] == "report" and not path.exists():
                continue  # "no ledger at …": said before opening it
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 2, (argv, out, err)
            assert "Traceback" not in err
            assert err.startswith("error: cannot open the ledger"), err
            assert len(err.strip().splitlines()) == 1, err


def test_the_not_accepted_advice_of_a_journalled_blast_leads_somewhere_that_works(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sandbox: tuple[FakeGateway, str],
) -> None:
    """A journalled blast keys rows by their line: its not-accepted file sent back under the
    same job is "input changed" for every row (they sit at other rows' lines), so the
    summary must not just say "fix and resend"; what it says instead works."""
    fake, url = sandbox
    monkeypatch.setenv("ISMS_USERNAME", "sandbox")
    monkeypatch.setenv("ISMS_PASSWORD", "sandbox-password")
    monkeypatch.setenv("ISMS_BASE_URL", url)
    recipients, ledger = tmp_path / "r.csv", str(tmp_path / "m.db")
    recipients.write_text("phone,name\n60125000001,A\nabc,B\n60125000003,C\n")
    blast = ["sms", "blast", "--text", "Hi {name}", "--ledger", ledger]
    assert main([*blast, str(recipients), "--job", "promo"]) == 1
    out = capsys.readouterr().out
    resend = tmp_path / "r.not_accepted.csv"
    assert f"not accepted: 1 rows written to {resend}" in out
    assert "send fixed rows under a new --job, as job 'promo' keys rows by their line" in out
    resend.write_text(resend.read_text().replace("abc,B", "60125000002,B"))
    assert main([*blast, str(resend), "--job", "promo"]) == 1  # what the advice warns of
    assert "input changed" in (tmp_path / "r.not_accepted.not_accepted.csv").read_text()
    assert main([*blast, str(resend), "--job", "promo-fixed"]) == 0  # what it advises
    capsys.readouterr()
    assert sorted(m.to for m in fake.sent) == ["60125000001", "60125000002", "60125000003"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_isms_ctrl_c_twice_then_the_same_command_and_report_tell_the_truth(
    tmp_path: Path,
    sandbox: tuple[FakeGateway, str],
    processes: list[subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A journalled iSMS blast (a real process) stopped at once by a second Ctrl-C leaves
    requests cut off in flight: the same command again never sends those (``unknown``,
    iSMS has no idempotency key), sends the rest once, and ``report --json`` / ``--csv``
    agree with the sandbox's records row for row."""
    fake, url = sandbox
    fake.inject(Fault.SLOW, times=None, delay=30.0)  # processed at once, answered later
    rows, path, ledger = 1_200, tmp_path / "r.csv", tmp_path / "m.db"
    write_recipients(path, rows)
    job = ("--job", "promo", "--ledger", str(ledger))
    process = start_blast(processes, url, path, "isms", "--grace", "600", *job)
    wait_for_sends(fake, process, 50)
    process.send_signal(signal.SIGINT)
    wait_for_line(process, "SIGINT: reading no more rows")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    cut_off = set(ids_in(tmp_path / "r.unknown.csv"))
    assert cut_off  # in flight when stopped

    fake.clear_faults()
    process = start_blast(processes, url, path, "isms", *job)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, (out, err)  # unknowns and invalid numbers
    by_row = Counter(int((m.text or "").rsplit("#", 1)[1]) for m in fake.sent)
    assert max(by_row.values()) == 1  # nothing sent twice
    invalid = {row for row in range(rows) if row % 97 == 5}
    assert set(ids_in(tmp_path / "r.unknown.csv")) == cut_off  # never sent again
    settled = set(range(rows)) - invalid - cut_off
    assert settled <= set(by_row) <= settled | cut_off  # a cut-off request may have gone

    assert main(["report", "promo", "--ledger", str(ledger), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    records = data["records"]
    assert len(records) == rows
    sent_ids = {m.message_id: m.to for m in fake.sent}
    statuses = Counter(r["outcome"] for r in records)
    assert statuses == {"accepted": rows - len(cut_off) - len(invalid)} | {
        "unknown": len(cut_off),
        "rejected": len(invalid),
    }
    assert {k: v for k, v in data["summary"]["outcomes"].items() if v} == dict(statuses)
    for record in records:
        if record["outcome"] == "accepted":
            assert sent_ids[record["message_id"]] == record["recipient"]
        if record["outcome"] == "unknown":
            assert record["index"] in cut_off
    assert main(["report", "promo", "--ledger", str(ledger), "--csv", str(tmp_path / "o.csv")]) == 0
    with (tmp_path / "o.csv").open(encoding="utf-8", newline="") as handle:
        rows_csv = list(csv.DictReader(handle))
    assert [(r["index"], r["outcome"], r["message_id"]) for r in rows_csv] == [
        (str(r["index"]), r["outcome"], r["message_id"] or "") for r in records
    ]
