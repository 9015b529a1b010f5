"""``whatsapp blast``: an approved template to every row of a CSV file, through the same
road as ``sms blast`` (files of rows not accepted, ``--job`` resuming from the ledger),
against the loopback sandbox."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from messaging_async.cli import main
from messaging_async.testing import (
    SANDBOX_APP_ID,
    SANDBOX_APP_SECRET,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    SANDBOX_WABA_NUMBER,
    FakeGateway,
)

CLI = "import sys; from messaging_async.cli import main; sys.exit(main())"


@pytest.fixture
def whatsapp_env(monkeypatch: pytest.MonkeyPatch, sandbox: tuple[FakeGateway, str]) -> FakeGateway:
    fake, url = sandbox
    for name, value in {
        "ISMS_USERNAME": SANDBOX_USERNAME,
        "ISMS_PASSWORD": SANDBOX_PASSWORD,
        "ISMS_BASE_URL": url,
        "ISMS_APP_ID": SANDBOX_APP_ID,
        "ISMS_APP_SECRET": SANDBOX_APP_SECRET,
        "ISMS_WABA_NUMBER": SANDBOX_WABA_NUMBER,
    }.items():
        monkeypatch.setenv(name, value)
    return fake


def write_rows(path: Path, count: int, *, invalid_every: int = 0) -> Path:
    """Rows ``id, phone, name, code``; every ``invalid_every``-th number is not a number."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "phone", "name", "code"])
        for row in range(count):
            bad = invalid_every and row % invalid_every == 1
            writer.writerow([row, "12" if bad else f"6012{row:07d}", f"name{row}", f"{row:06d}"])
    return path


def sent_to(fake: FakeGateway) -> Counter[str]:
    return Counter(m.to for m in fake.sent if m.gateway == "whatsapp")


def test_each_row_gets_the_template_with_its_own_params(
    whatsapp_env: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rows(tmp_path / "r.csv", 40, invalid_every=13)
    code = main(
        [
            "whatsapp",
            "blast",
            str(path),
            "order_update",
            "--param-column",
            "name",
            "--param-column",
            "code",
        ]
    )
    assert code == 1  # the invalid numbers: not accepted
    sent = [m for m in whatsapp_env.sent if m.gateway == "whatsapp"]
    invalid = {row for row in range(40) if row % 13 == 1}
    assert sorted(int(m.to[4:]) for m in sent) == sorted(set(range(40)) - invalid)
    for message in sent:
        row = int(message.to[4:])
        assert message.template == "order_update"
        assert message.params is not None
        assert list(message.params.values()) == [f"name{row}", f"{row:06d}"]
    with (tmp_path / "r.not_accepted.csv").open(encoding="utf-8", newline="") as handle:
        assert sorted(int(r["id"]) for r in csv.DictReader(handle)) == sorted(invalid)
    out = capsys.readouterr().out
    assert f"accepted   {40 - len(invalid):>9,}" in out


def test_a_dry_run_sends_nothing_and_counts(
    whatsapp_env: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rows(tmp_path / "r.csv", 27, invalid_every=13)
    argv = ["whatsapp", "blast", str(path), "otp", "--param-column", "code", "--dry-run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "recipients:        27 (2 with invalid numbers)" in out
    assert "template:          otp (en), 1 parameters from code" in out
    assert "requests:          25" in out
    assert not sent_to(whatsapp_env)


def test_a_missing_param_column_is_one_line_before_anything_is_sent(
    whatsapp_env: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rows(tmp_path / "r.csv", 5)
    assert main(["whatsapp", "blast", str(path), "otp", "--param-column", "pin"]) == 2
    err = capsys.readouterr().err
    assert "--param-column pin: r.csv has no such column" in err
    assert "Traceback" not in err
    assert not sent_to(whatsapp_env)


def test_a_journalled_blast_run_again_sends_only_what_it_has_not(
    whatsapp_env: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first run covers the file's first 30 rows (as a run cut short would); the same
    command over the whole file sends the other 20, and once more sends nothing."""
    ledger = tmp_path / "ledger.db"
    job = ["--job", "promo", "--ledger", str(ledger), "--param-column", "code"]
    first = write_rows(tmp_path / "first.csv", 30)
    whole = write_rows(tmp_path / "whole.csv", 50)
    assert main(["whatsapp", "blast", str(first), "otp", *job]) == 0
    assert sum(sent_to(whatsapp_env).values()) == 30
    assert main(["whatsapp", "blast", str(whole), "otp", *job]) == 0
    assert main(["whatsapp", "blast", str(whole), "otp", *job]) == 0
    sent = sent_to(whatsapp_env)
    assert len(sent) == 50
    assert max(sent.values()) == 1
    capsys.readouterr()
    assert main(["report", "promo", "--ledger", str(ledger), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["outcomes"]["accepted"] == 50


def test_rows_marked_unknown_need_resend_unknown(
    whatsapp_env: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template is charged per message and iSMS has no idempotency key: a file a blast
    wrote with ``unknown`` rows is refused unless the user says to send them anyway."""
    path = tmp_path / "r.unknown.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "pin", "status", "code", "reason", "seqno"])
        writer.writerow(["60120000001", "1", "unknown", "", "timed out", ""])
    assert main(["whatsapp", "blast", str(path), "otp"]) == 2
    assert "--resend-unknown" in capsys.readouterr().err
    assert not sent_to(whatsapp_env)
    assert main(["whatsapp", "blast", str(path), "otp", "--resend-unknown"]) == 0
    assert sent_to(whatsapp_env) == Counter({"60120000001": 1})


def test_a_report_piped_into_a_reader_that_leaves_early_ends_quietly(
    whatsapp_env: FakeGateway, tmp_path: Path
) -> None:
    """``messaging-async report NAME | head -1``: no BrokenPipeError traceback, exit 141."""
    ledger = tmp_path / "ledger.db"
    path = write_rows(tmp_path / "r.csv", 3000)
    job = ["--job", "big", "--ledger", str(ledger)]
    assert main(["whatsapp", "blast", str(path), "otp", "--param-column", "code", *job]) == 0
    # --json: the records too, far more than a pipe holds (the table alone is ~250 bytes,
    # written whole before the reader closes, so nothing would break and it exits 0)
    command = [sys.executable, "-c", CLI, "report", "big", "--ledger", str(ledger), "--json"]
    process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline()
    process.stdout.close()  # as head does after its line
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err
    assert process.returncode == 141, err
