"""The ledger on the command line as a new user meets it: a ledger path that is not a
ledger is one clear line (exit 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from messaging_async import SqliteLedger
from messaging_async.cli import main
from messaging_async.errors import LedgerError
from messaging_async.testing import FakeGateway


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
