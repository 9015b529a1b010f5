"""The PHP example of docs/testing.md, run with PHP's own curl extension against a sandbox
process: what a PHP shop's test suite would do. `make test` installs php-cli where missing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_sandbox_cli import SCRIPT, running_sandbox

PAGE = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def php_block() -> str:
    found = re.search(r"```php\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    assert found is not None
    return found.group(1)


def test_the_php_example_sends_through_a_sandbox_process(tmp_path: Path) -> None:
    php = shutil.which("php")
    if php is None:
        if os.environ.get("CI"):
            pytest.fail("php is missing: `make test` installs php-cli and php-curl")
        pytest.skip("php is not installed (make test installs it)")
    script = tmp_path / "example.php"
    script.write_text(php_block(), encoding="utf-8")
    with running_sandbox([str(SCRIPT), "sandbox", "--port", "0"]) as (_, url, _placeholders):
        done = subprocess.run(  # noqa: S603 - php from PATH, our own example file
            [php, str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "SANDBOX_URL": url},
        )
    assert done.returncode == 0, done.stderr
    waba, classic, sent = done.stdout.splitlines()
    message_id = json.loads(waba)["messageId"]
    assert json.loads(waba)["statusCode"] == "OK"
    classic_id = re.fullmatch(r"2000 = SUCCESS:(\d+)", classic)
    assert classic_id is not None
    recorded = json.loads(sent)["sent"]
    assert [(m["endpoint"], m["message_id"]) for m in recorded] == [
        ("isms_send_waba.php", message_id),
        ("isms_send_all_id.php", classic_id.group(1)),
    ]
    assert recorded[0]["params"] == {"param1": "123456"}
