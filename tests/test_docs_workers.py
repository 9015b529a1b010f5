"""The ```python examples of docs/workers.md run against the session's throwaway PostgreSQL
cluster (``MESSAGING_DSN``), after ``messaging-async db migrate`` as the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from messaging_async.cli import main

PAGE = Path(__file__).resolve().parent.parent / "docs" / "workers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
PRINTED = [  # what each block prints first, on a fresh database
    "3 recipients in 2 slices",
    "0 recipients, 0 accepted",
]


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) == len(PRINTED)
    assert all("MESSAGING_DSN" in block for block in BLOCKS)  # else test_readme runs them


@pytest.mark.parametrize(
    ("code", "printed"),
    list(zip(BLOCKS, PRINTED, strict=False)),  # test_the_page_has_examples checks the lengths
    ids=[f"block{i}" for i in range(min(len(BLOCKS), len(PRINTED)))],
)
def test_the_example_runs(
    code: str,
    printed: str,
    pg_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MESSAGING_DSN", pg_dsn)
    assert main(["db", "migrate"]) == 0
    capsys.readouterr()
    exec(compile(code, "<docs/workers.md>", "exec"), {"__name__": "__docs__"})  # noqa: S102
    assert capsys.readouterr().out.startswith(printed)
