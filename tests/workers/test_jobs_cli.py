"""``messaging-async jobs submit|status|cancel`` against the session's PostgreSQL cluster
(no gateway: nothing is sent before a worker runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from messaging_async.cli import main

SECRET = "code 918273"


@pytest.fixture
def recipients(tmp_path: Path) -> Path:
    path = tmp_path / "recipients.csv"
    rows = [f"6012{n:07d},Name{n}" for n in range(250)]
    path.write_text("phone,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_submit_status_and_cancel(
    recipients: Path,
    pg_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MESSAGING_DSN", pg_dsn)
    text = "Hi {name}, " + SECRET
    assert (
        main(["jobs", "submit", str(recipients), "--job", "p1", "--text", text, "--slice", "100"])
        == 0
    )
    assert "p1: 250 recipients in 3 slices of 100 on isms" in capsys.readouterr().out

    assert main(["jobs", "status", "p1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["job"] == "p1"
    assert data["total"] == 0  # nothing sent before a worker runs
    assert data["slices"] == {"done": 0, "running": 0, "waiting": 3}
    assert set(data["outcomes"]) >= {"accepted", "rejected", "not_sent", "unknown"}
    assert "awaiting" in data["delivery"]

    assert main(["jobs", "cancel", "p1"]) == 0
    assert "3 slices not started are not_sent" in capsys.readouterr().out
    assert main(["jobs", "status", "p1"]) == 0
    shown = capsys.readouterr().out
    assert "p1 on isms: cancelled" in shown
    assert "250 not_sent" in shown
    assert "3 done" in shown
    assert SECRET not in shown


def test_a_blast_that_does_not_exist(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESSAGING_DSN", pg_dsn)
    assert main(["jobs", "status", "nope"]) == 2
    assert main(["jobs", "cancel", "nope"]) == 2
    assert "no blast named 'nope'" in capsys.readouterr().err


def test_the_database_is_required(
    recipients: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MESSAGING_DSN", raising=False)
    assert main(["jobs", "submit", str(recipients), "--job", "p", "--text", "Hi"]) == 2
    assert main(["worker"]) == 2
    assert "--dsn or $MESSAGING_DSN" in capsys.readouterr().err


def test_rows_the_template_cannot_fill_are_not_submitted(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESSAGING_DSN", pg_dsn)
    path = tmp_path / "short.csv"
    path.write_text("phone,name\n60123456789,Ahmad\n60198765432\n", encoding="utf-8")
    assert main(["jobs", "submit", str(path), "--job", "p2", "--text", "Hi {name}"]) == 0
    captured = capsys.readouterr()
    assert "p2: 1 recipients in 1 slices" in captured.out
    assert "not submitted: invalid input: line 3 has no value for name" in captured.err
