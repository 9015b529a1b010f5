"""The command line, against the sandbox served on a loopback port from a helper thread."""

from __future__ import annotations

import base64
import csv
import json
import re
import socket
from pathlib import Path

import pytest

from messaging_async.cli import main
from messaging_async.cli._blast import RESEND_COLUMNS, CsvSource
from messaging_async.testing import SANDBOX_PASSWORD, SANDBOX_USERNAME, FakeGateway, Fault


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
    with path.open("a", encoding="utf-8") as handle:
        handle.write("60123450000\n")  # no name: the template cannot be filled
    assert main(["sms", "blast", str(path), "--text", "Hi {name}", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "recipients:        122 (1 with invalid numbers, 1 missing a template column)" in printed
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


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_unknown_rows_go_to_their_own_file_and_the_summary_warns(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first chunk reaches the gateway and the connection drops: its fate is unknown.
    isms_env.inject(Fault.RESET, endpoint="isms_send_json.php")
    path = recipients(tmp_path / "r.csv", [*ROWS[:60], ("12", "too short")])
    code = main(["sms", "blast", str(path), "--text", "Hi {name}"])
    out = capsys.readouterr().out
    assert code == 1
    columns, unknown = read_rows(tmp_path / "r.unknown.csv")
    _, not_accepted = read_rows(tmp_path / "r.not_accepted.csv")
    assert columns == ["phone", "name", *RESEND_COLUMNS]
    assert {row["status"] for row in unknown} == {"unknown"}
    assert [(row["phone"], row["status"]) for row in not_accepted] == [("12", "rejected")]
    assert len(unknown) == int(re.findall(r"^unknown\s+(\d+)$", out, re.M)[0]) > 0
    assert "do not resend these blindly" in out
    assert "r.unknown.csv" in out
    # Sending the unknown file again through iSMS, which has no idempotency key, takes
    # an explicit flag.
    sent = len(isms_env.sent)
    resend = ["sms", "blast", str(tmp_path / "r.unknown.csv"), "--text", "Hi {name}"]
    assert main(resend) == 2
    assert f"{len(unknown)} rows of r.unknown.csv are marked unknown" in capsys.readouterr().err
    assert len(isms_env.sent) == sent
    assert main([*resend, "--resend-unknown"]) == 0
    assert len(isms_env.sent) == sent + len(unknown)


def test_resending_a_not_accepted_file_never_doubles_its_columns(
    tmp_path: Path, isms_env: FakeGateway
) -> None:
    path = recipients(tmp_path / "r.csv", [*ROWS[:3], ("12", "short"), ("6019999999x", "typo")])
    assert main(["sms", "blast", str(path), "--text", "Hi {name}"]) == 1
    first = tmp_path / "r.not_accepted.csv"
    # The user fixes one number and sends the file again, as the summary suggests.
    columns, rows = read_rows(first)
    rows[1]["phone"] = "60199999990"
    with first.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    assert main(["sms", "blast", str(first), "--text", "Hi {name}"]) == 1
    columns, again = read_rows(tmp_path / "r.not_accepted.not_accepted.csv")
    assert columns == ["phone", "name", "status", "code", "reason", "seqno"]
    assert [row["phone"] for row in again] == ["12"]
    assert isms_env.sent_to("60199999990")[0].text == "Hi typo"


def test_a_row_missing_a_template_column_is_rejected_not_sent_as_none(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.csv"
    path.write_text("phone,name\n60123456780,Ahmad\n60123456781\n60123456782,Siti\n", "utf-8")
    assert main(["sms", "blast", str(path), "--text", "Hi {name}"]) == 1
    assert sorted(message.text or "" for message in isms_env.sent) == ["Hi Ahmad", "Hi Siti"]
    _, rows = read_rows(tmp_path / "r.not_accepted.csv")
    assert [(row["phone"], row["status"]) for row in rows] == [("60123456781", "rejected")]
    assert "line 3 has no value for name" in rows[0]["reason"]
    assert re.search(r"^rejected\s+1$", capsys.readouterr().out, re.M)


@pytest.mark.parametrize(
    ("content", "template", "expected"),
    [
        (None, "Hi {name}", "cannot read"),
        (b"phone,name\n60123456789,Ren\xe9\n", "Hi {name}", "not UTF-8"),
        (b"phone,name\n" + b"60123456789,Ann\n" * 500 + b"6012,\xff\n", "Hi", "not UTF-8"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name", "malformed"),
        (b"phone,name\n60123456789,Ann\n", "Hi {0}", "positional"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name:d}", "malformed"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name.upper.x}", "malformed"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name.__class__}", "only plain {column}"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name[0]}", "only plain {column}"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name!r}", "only plain {column}"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name:>{phone}}", "only plain {column}"),
        (b"phone,name\n60123456789,Ann\n", "Hi {name:>9}", "only plain {column}"),
        (b"", "Hi", "no header"),
        (b"name\nAnn\n", "Hi", "no phone column"),
    ],
)
def test_bad_files_and_templates_print_one_line_and_exit_2(
    tmp_path: Path,
    isms_env: FakeGateway,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    template: str,
    expected: str,
) -> None:
    path = tmp_path / "r.csv"
    if content is not None:
        path.write_bytes(content)
    assert main(["sms", "blast", str(path), "--text", template]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert isms_env.sent == []
    assert not (tmp_path / "r.not_accepted.csv").exists()


def test_the_output_files_may_not_overwrite_the_input(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    path = recipients(tmp_path / "r.csv", ROWS[:2])
    assert main(["sms", "blast", str(path), "--text", "Hi", "--resend-csv", str(path)]) == 2
    assert "three files" in capsys.readouterr().err
    assert len(read_rows(path)[1]) == 2
    assert isms_env.sent == []


def test_a_resent_unknown_row_keeps_its_seqno_on_sms_com_my_only(tmp_path: Path) -> None:
    path = tmp_path / "r.unknown.csv"
    path.write_text(
        "phone,name,status,code,reason,seqno\n"
        "60123456780,Ahmad,unknown,,no answer,seq-1\n"
        "60123456781,Siti,not_sent,,down,seq-2\n",
        "utf-8",
    )
    reused = list(CsvSource(path, "Hi {name}", reuse_seqno=True).messages())
    assert [message.seqno for message in reused] == ["seq-1", None]
    assert reused[0].ref == {"phone": "60123456780", "name": "Ahmad"}
    fresh = list(CsvSource(path, "Hi {name}").messages())
    assert [message.seqno for message in fresh] == [None, None]


def test_a_password_flag_warns_and_a_password_file_or_prompt_does_not(
    tmp_path: Path,
    isms_env: FakeGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["balance", "--password", SANDBOX_PASSWORD]) == 0
    assert "warning: --password is visible" in capsys.readouterr().err
    secret = tmp_path / "password"
    secret.write_text(SANDBOX_PASSWORD + "\n", "utf-8")
    monkeypatch.delenv("ISMS_PASSWORD")
    assert main(["balance", "--password-file", str(secret)]) == 0
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return SANDBOX_PASSWORD

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", prompt)
    assert main(["balance"]) == 0
    out, err = capsys.readouterr()
    assert asked == ["iSMS password: "]
    assert "warning" not in err
    assert SANDBOX_PASSWORD not in out + err
    with pytest.raises(SystemExit) as exited:
        main(["balance", "--password-file", str(tmp_path / "missing")])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("error: cannot read --password-file")


def test_the_sandbox_refuses_a_busy_port_and_a_public_host_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["sandbox", "--port", str(port)]) == 2
        assert (
            capsys.readouterr().err
            == f"error: the sandbox cannot listen on 127.0.0.1:{port}: it is in use\n"
        )
    assert main(["sandbox", "--host", "0.0.0.0", "--port", "0"]) == 2  # noqa: S104
    err = capsys.readouterr().err
    assert "loopback" in err
    assert err.count("\n") == 1


def test_resending_the_unknown_file_through_sms_com_my_reports_the_1718s_accepted(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gateway recorded each row, but no answer came back: the rows are ``unknown``,
    with their seqno. Resent, each is answered 1718: the gateway already has it and made
    no duplicate, so the rows are accepted and the exit code is 0 (not "rejected", 2)."""
    isms_env.inject(Fault.RESET, endpoint="ISendSMS.aspx", times=None)
    path = recipients(tmp_path / "r.csv", ROWS[:3])
    blast = ["sms", "blast", "--gateway", "smscommy", "--text", "Hi {name}"]
    assert main([*blast, str(path)]) == 1
    _, unknown = read_rows(tmp_path / "r.unknown.csv")
    assert [row["status"] for row in unknown] == ["unknown"] * 3
    assert len(isms_env.sent) == 3
    isms_env.clear_faults()
    capsys.readouterr()
    assert main([*blast, str(tmp_path / "r.unknown.csv")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^accepted\s+3$", out, re.M), out
    assert re.search(r"^rejected\s+0$", out, re.M), out
    assert not (tmp_path / "r.unknown.not_accepted.csv").exists()
    assert len(isms_env.sent) == 3  # nothing was sent twice


def test_a_blast_with_no_row_accepted_exits_1_not_2(
    tmp_path: Path, isms_env: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 is an error (arguments, files, template); recipients not accepted are 1."""
    path = recipients(tmp_path / "r.csv", [("12", "short"), ("6019999999x", "typo")])
    assert main(["sms", "blast", str(path), "--text", "Hi {name}"]) == 1
    assert re.search(r"^rejected\s+2$", capsys.readouterr().out, re.M)
