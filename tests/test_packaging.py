"""What the package says about itself matches what `make test` checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_classifiers_name_the_pythons_make_test_runs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    classified = {
        line.rsplit(" :: ", 1)[1]
        for line in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", line)
    }
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^TEST_PYTHONS \?= (.+)$", makefile, flags=re.M)
    assert match is not None
    tested = set(match.group(1).split())
    assert classified == tested == {"3.11", "3.12", "3.13"}
    assert project["requires-python"] == f">={min(tested, key=lambda v: int(v.split('.')[1]))}"
