"""The ```python examples of docs/workers.md run against the session's throwaway PostgreSQL
cluster (``MESSAGING_DSN``), after ``messaging-async db migrate`` as the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from messaging_async.cli import main

PAGE = Path(__file__).resolve().parent.parent / "docs" / "workers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_examples() -> None:
    assert BLOCKS
    assert all("MESSAGING_DSN" in block for block in BLOCKS)  # else test_readme runs them


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_the_example_runs(
    code: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESSAGING_DSN", pg_dsn)
    assert main(["db", "migrate"]) == 0
    exec(compile(code, "<docs/workers.md>", "exec"), {"__name__": "__docs__"})  # noqa: S102
    assert "0 recipients" in capsys.readouterr().out
