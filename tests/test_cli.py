"""The command line, against the sandbox served on a loopback port from a helper thread."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest

from messaging_async.cli import main
from messaging_async.testing import SANDBOX_PASSWORD, SANDBOX_USERNAME, FakeGateway


@pytest.fixture
def isms_env(monkeypatch: pytest.MonkeyPatch, sandbox: tuple[FakeGateway, str]) -> FakeGateway:
    fake, url = sandbox
    monkeypatch.setenv("ISMS_USERNAME", SANDBOX_USERNAME)
    monkeypatch.setenv("ISMS_PASSWORD", SANDBOX_PASSWORD)
    monkeypatch.setenv("ISMS_BASE_URL", url)
    monkeypatch.setenv("SMSCOMMY_USERNAME", SANDBOX_USERNAME)
    monkeypatch.setenv("SMSCOMMY_PASSWORD", SANDBOX_PASSWORD)
    monkeypatch.setenv("SMSCOMMY_BASE_URL", f"{url}/websmsapi")
    return fake


def recipients(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name"])
        writer.writerows(rows)
    return path


ROWS = [(f"6012{i:07d}", name) for i, name in enumerate(["Ahmad", "Siti", "Mei Ling", "李明"] * 30)]


def test_blast_dry_run_sends_nothing(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    path = recipients(tmp_path / "r.csv", [*ROWS, ("012", "local")])
    assert main(["sms", "blast", str(path), "--text", "Hi {name}", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "recipients:        121 (1 with invalid numbers)" in printed
    assert "encodings:         GSM 90 · Unicode 30" in printed
    assert "requests:          3 " in printed  # 90 GSM → 2 chunks, 30 Unicode → 1
    assert "estimated credits: 120" in printed
    assert isms_env.sent == []


def test_blast_sends_summarises_and_writes_the_resend_csv(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    path = recipients(tmp_path / "r.csv", [*ROWS, ("12", "too short"), ("6019999999x", "typo")])
    code = main(["sms", "blast", str(path), "--text", "Hi {name}, your code is 42"])
    out, err = capsys.readouterr()
    assert code == 1  # partial: some recipients not accepted
    assert re.search(r"^accepted\s+120$", out, re.M)
    assert re.search(r"^rejected\s+2$", out, re.M)
    assert "122 recipients in" in out
    assert "100%" in err  # the progress line
    resend = tmp_path / "r.not_accepted.csv"
    with resend.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["phone"], r["status"]) for r in rows] == [
        ("12", "rejected"),
        ("6019999999x", "rejected"),
    ]
    assert rows[0]["reason"].startswith("invalid input")
    assert len(isms_env.sent) == 120
    assert isms_env.sent_to("60120000003")[0].text == "Hi 李明, your code is 42"


def test_blast_with_everything_accepted_exits_0_and_leaves_no_resend_file(
    tmp_path: Path, isms_env: FakeGateway
) -> None:
    path = recipients(tmp_path / "r.csv", ROWS[:10])
    assert main(["sms", "blast", str(path), "--text", "Hi {name}", "--gateway", "smscommy"]) == 0
    assert not (tmp_path / "r.not_accepted.csv").exists()
    assert len(isms_env.sent) == 10


def test_a_template_column_the_csv_lacks_is_an_error(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    path = recipients(tmp_path / "r.csv", ROWS[:2])
    assert main(["sms", "blast", str(path), "--text", "Hi {first_name}"]) == 2
    assert "{first_name}" in capsys.readouterr().err


def test_send_balance_credits_and_errors(
    isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sms", "send", "60123456789", "hello"]) == 0
    assert main(["sms", "send", "--gateway", "smscommy", "60123456789", "hello"]) == 0
    assert main(["balance"]) == 0
    assert main(["credits"]) == 0
    assert main(["sms", "send", "--password", "wrong-password", "60123456789", "hi"]) == 2
    out, err = capsys.readouterr()
    assert "credits: 999999.00" in out
    assert "credits left: 999999" in out
    assert "authentication failed" in err
    assert "wrong-password" not in out + err
    assert SANDBOX_PASSWORD not in out + err


def test_whatsapp_commands(isms_env: FakeGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    from messaging_async.testing import SANDBOX_APP_ID, SANDBOX_APP_SECRET, SANDBOX_WABA_NUMBER

    monkeypatch.setenv("ISMS_APP_ID", SANDBOX_APP_ID)
    monkeypatch.setenv("ISMS_APP_SECRET", SANDBOX_APP_SECRET)
    monkeypatch.setenv("ISMS_WABA_NUMBER", SANDBOX_WABA_NUMBER)
    assert main(["whatsapp", "template", "60123456789", "otp", "--param", "123456"]) == 0
    assert main(["whatsapp", "text", "60123456789", "hi"]) == 2  # outside the 24-hour window
    assert isms_env.sent[0].params == {"param1": "123456"}


def test_missing_credentials_and_webhook_decode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ISMS_USERNAME", raising=False)
    monkeypatch.delenv("ISMS_PASSWORD", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["balance"])
    assert exited.value.code == 2
    encoded = (
        base64.urlsafe_b64encode(json.dumps({"from": "6012", "text": "hi"}).encode())
        .decode()
        .rstrip("=")
    )
    assert main(["webhook", "decode", encoded]) == 0
    assert json.loads(capsys.readouterr().out) == {"from": "6012", "text": "hi"}
    assert main(["webhook", "decode", "%%%"]) == 2
