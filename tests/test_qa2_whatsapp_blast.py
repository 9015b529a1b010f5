"""QA (qa2): ``whatsapp blast`` as a new user reads it from docs/cli.md, against the
sandbox: what the dry run promises is what the blast sends; a missing WhatsApp setting
and a bad ``--concurrency`` are one line naming what the user sets; a UTF-8 BOM file and
unicode parameters; a template the gateway does not know stops only its own messages."""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from messaging_async import IsmsClient, ValidationError, WhatsAppTemplate
from messaging_async.cli import main
from messaging_async.testing import FakeGateway

from .test_cli_whatsapp_blast import sent_to, whatsapp_env

__all__ = ["whatsapp_env"]  # the fixture, used here by name

ROWS = [
    ["phone", "name", "order"],
    ["60123456701", "Ali", "A1"],
    ["60123456702", "", "A2"],  # an empty value: refused by the send
    ["60123456703", "Zoë 😀 中文", "A3"],  # unicode: sent as it is
    ["60123456704", "Bob"],  # a short row: no value for order
    ["60123456705", "  ", "A5"],  # only blanks: empty too
]


def write_bom_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # with a UTF-8 BOM
        csv.writer(handle).writerows(ROWS)
    return path


def test_the_dry_run_counts_what_the_blast_will_refuse(
    whatsapp_env: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row whose parameter is empty is refused by the blast without being sent: the dry
    run must not count it as a request (it said 4 requests; 2 were sent)."""
    path = write_bom_file(tmp_path / "r.csv")
    argv = ["whatsapp", "blast", str(path), "order_update"]
    argv += ["--param-column", "name", "--param-column", "order"]
    assert main([*argv, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert main(argv) == 1
    capsys.readouterr()
    sent = sent_to(whatsapp_env)
    assert sorted(sent) == ["60123456701", "60123456703"]
    assert f"requests:          {len(sent)} " in dry
    assert "2 with an empty or unusable parameter" in dry
    params = [m.params for m in whatsapp_env.sent if m.to == "60123456703"]
    assert params == [{"param1": "Zoë 😀 中文", "param2": "A3"}]
    with (tmp_path / "r.not_accepted.csv").open(encoding="utf-8", newline="") as handle:
        refused = {row["phone"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(refused) == {"60123456702", "60123456704", "60123456705"}
    assert "empty" in refused["60123456702"]


@pytest.mark.parametrize("missing", ["ISMS_APP_ID", "ISMS_APP_SECRET", "ISMS_WABA_NUMBER"])
def test_a_missing_whatsapp_setting_names_its_variable(
    whatsapp_env: FakeGateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    missing: str,
) -> None:
    """A CLI user sets environment variables, not ``IsmsClient(...)`` arguments: the one
    line says which variable is missing."""
    monkeypatch.delenv(missing)
    path = write_bom_file(tmp_path / "r.csv")
    code = main(["whatsapp", "blast", str(path), "otp", "--param-column", "name"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"${missing}" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not sent_to(whatsapp_env)


def test_the_sdk_names_every_missing_setting_and_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ISMS_APP_ID", "ISMS_APP_SECRET", "ISMS_WABA_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    client = IsmsClient(username="u", password="p", app_id="a")
    with pytest.raises(ValidationError) as caught:
        client._require_whatsapp_settings()
    message = str(caught.value)
    assert "app_secret" in message
    assert "waba_number" in message
    assert "$ISMS_APP_SECRET" in message
    assert "$ISMS_WABA_NUMBER" in message
    assert "app_id" not in message.replace("app_secret", "")


@pytest.mark.parametrize("command", ["whatsapp", "sms"])
@pytest.mark.parametrize("value", ["0", "-1", "1001", "many"])
def test_a_bad_concurrency_is_refused_as_the_option_the_user_gave(
    whatsapp_env: FakeGateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    value: str,
) -> None:
    """``--concurrency 0`` said "max_concurrency must be an int from 1 to 1000": an
    argument the user never saw. Now argparse's one error line names ``--concurrency``."""
    path = write_bom_file(tmp_path / "r.csv")
    what = ["otp", "--param-column", "name"] if command == "whatsapp" else ["--text", "Hi"]
    with pytest.raises(SystemExit) as stopped:
        main([command, "blast", str(path), *what, "--concurrency", value])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--concurrency" in err.splitlines()[-1]
    assert "max_concurrency" not in err
    assert not whatsapp_env.sent


def test_the_whatsapp_blast_help_offers_no_gateway_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``whatsapp blast`` has no ``--gateway``: its help must not point to one."""
    with pytest.raises(SystemExit):
        main(["whatsapp", "blast", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--gateway" not in help_text
    assert "sms.com.my" not in help_text
    with pytest.raises(SystemExit):
        main(["sms", "blast", "--help"])
    sms_help = " ".join(capsys.readouterr().out.split())
    assert "with --gateway smscommy, resending this file" in sms_help  # still there


@pytest.mark.anyio
async def test_an_unknown_template_stops_only_its_own_messages() -> None:
    """60006 for one template code stops that code's messages, not the others'."""
    fake = FakeGateway()
    items = [
        WhatsAppTemplate(
            to=f"6012{i:07d}", template_code="nosuch" if i % 2 else "otp", params=["1"]
        )
        for i in range(40)
    ]
    async with fake.isms_client(max_whatsapp_concurrency=2) as isms:
        report = await isms.send_whatsapp_bulk(items)
    statuses = Counter((o.index % 2, o.status.value) for o in report.outcomes)
    assert statuses[(0, "accepted")] == 20
    assert statuses[(1, "accepted")] == 0
    assert sum(1 for m in fake.sent if m.gateway == "whatsapp") == 20
    assert fake.requests <= 20 + 2 + 1  # the unknown code's: one, and those already in flight


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\bISMS_[A-Z_]+\b", text))


def test_the_variables_the_docs_name_for_a_whatsapp_blast_are_enough(
    whatsapp_env: FakeGateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new user sets what docs/cli.md's WhatsApp blast paragraph and the command's help
    name (and the sandbox's base URL): the blast must then run. They named only the
    WhatsApp app's three, and the command stopped at 'iSMS needs --username/--password'."""
    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    paragraph = docs[docs.index("`whatsapp blast FILE TEMPLATE_CODE`") :].split("\n\n")[0]
    with pytest.raises(SystemExit):
        main(["whatsapp", "blast", "--help"])
    help_text = capsys.readouterr().out
    for named in (_variables(paragraph), _variables(help_text)):
        assert {"ISMS_APP_ID", "ISMS_APP_SECRET", "ISMS_WABA_NUMBER"} <= named
        for variable in _variables(docs) - named - {"ISMS_BASE_URL"}:
            monkeypatch.delenv(variable, raising=False)
        path = write_bom_file(tmp_path / "r.csv")
        code = main(["whatsapp", "blast", str(path), "otp", "--param-column", "order"])
        assert "error" not in capsys.readouterr().err
        assert code == 1  # the row short of an order: the rest accepted
        for variable in named - {"ISMS_BASE_URL"}:
            assert variable in os.environ


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
@pytest.mark.parametrize(
    ("code", "language", "named"),
    [("otp", "", "--language"), ("otp", "english!", "--language"), (" ", "en", "TEMPLATE_CODE")],
)
def test_a_bad_template_code_or_language_is_one_line_before_anything_is_sent(
    whatsapp_env: FakeGateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: str,
    language: str,
    named: str,
    dry_run: list[str],
) -> None:
    """The same for every row, so an argument error (docs: "a bad template: one line on
    stderr", exit 2), not every row rejected one by one into the not-accepted file."""
    path = write_bom_file(tmp_path / "r.csv")
    argv = ["whatsapp", "blast", str(path), code, "--language", language]
    assert main([*argv, "--param-column", "order", *dry_run]) == 2
    captured = capsys.readouterr()
    assert named in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not whatsapp_env.sent
    assert not (tmp_path / "r.not_accepted.csv").exists()
    assert "requests:" not in captured.out
