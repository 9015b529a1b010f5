"""QA (qa2): a journalled blast keys each row by its line in the file, as its summary
says. A row too short to fill the message (rejected before anything is sent) must keep
its line: fixed in place and run again, it is sent, and no other row moves onto another
row's key (on main the rows after it moved up one; the row that landed where an invalid
number had been was sent a second time, and the fixed row was "input changed")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from messaging_async.cli import main
from messaging_async.testing import FakeGateway

from .test_cli_whatsapp_blast import whatsapp_env

__all__ = ["whatsapp_env"]  # the fixture, used here by name

BEFORE = "phone,name,order\n60125000001,A,o1\n60125000002,B\n60125000003,C,o3\nabc,D,o4\n"
PARAMS = ["--param-column", "name", "--param-column", "order"]
AFTER = BEFORE.replace("60125000002,B\n", "60125000002,B,o2\n")  # the short row fixed


@pytest.mark.parametrize(
    "what",
    [
        ["whatsapp", "blast", "{csv}", "order_update", *PARAMS],
        ["sms", "blast", "{csv}", "--text", "Hi {name}, order {order} shipped"],
    ],
    ids=["whatsapp", "sms"],
)
def test_a_short_row_fixed_in_place_is_sent_and_no_other_row_again(
    whatsapp_env: FakeGateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    what: list[str],
) -> None:
    path = tmp_path / "r.csv"
    argv = [part.replace("{csv}", str(path)) for part in what]
    argv += ["--job", "promo", "--ledger", str(tmp_path / "l.db")]
    path.write_text(BEFORE, encoding="utf-8")
    assert main(argv) == 1
    path.write_text(AFTER, encoding="utf-8")
    assert main(argv) == 1  # the invalid number: still not accepted
    capsys.readouterr()
    sent = Counter(m.to for m in whatsapp_env.sent)
    assert sent == Counter(["60125000001", "60125000002", "60125000003"])  # once each
    refused = (tmp_path / "r.not_accepted.csv").read_text(encoding="utf-8")
    assert "input changed" not in refused
    assert refused.count("\n") == 2  # the header and the invalid number
    assert main(argv) == 1  # and once more: nothing sent
    assert sum(Counter(m.to for m in whatsapp_env.sent).values()) == 3
