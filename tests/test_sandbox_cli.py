"""``messaging-async sandbox`` as a real process: docs/testing.md's "Over a socket, from any
language" block run as written (curl against the started sandbox), the start flags, and the
control subcommands a shell user drives it with."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from messaging_async import DeliveryStatus, WebhookReceiver
from messaging_async.cli import main
from messaging_async.testing import serve

PAGE = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
SCRIPT = Path(sys.executable).parent / "messaging-async"
TOKEN = "sandbox-cli-token-0123456789"
PAGE_URL = "http://127.0.0.1:8080"


@contextmanager
def running_sandbox(argv: list[str]) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """Start the sandbox process, read its URL from the first line, stop it with SIGTERM."""
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    killer = threading.Timer(60, process.kill)  # a sandbox that never starts fails the test
    killer.start()
    try:
        first = process.stdout.readline() if process.stdout else ""
        found = re.search(r"on (http://127\.0\.0\.1:\d+) ", first)
        assert found, (first, process.stderr.read() if process.stderr else "")
        placeholders = [process.stdout.readline().strip() for _ in range(9)]  # type: ignore[union-attr]
        yield process, found.group(1), placeholders
    finally:
        killer.cancel()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(30)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def page_block() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    block = re.search(r"## Over a socket, from any language.*?```sh\n(.*?)```", text, flags=re.S)
    assert block is not None
    return block.group(1).splitlines()


def test_the_docs_socket_block_runs_against_a_real_sandbox_process() -> None:
    first, *rest = page_block()
    start = shlex.split(first.split("#")[0].rstrip(" &"))
    assert start[:2] == ["messaging-async", "sandbox"]
    argv = [str(SCRIPT), *start[1:]]
    argv[argv.index("--port") + 1] = "0"  # the page's 8080 may be taken here
    with running_sandbox(argv) as (process, url, placeholders):
        script = "set -e\n" + "\n".join(rest).replace(PAGE_URL, url)
        done = subprocess.run(  # noqa: S603
            ["bash", "-c", script],  # noqa: S607 - bash and curl from PATH, as a user runs them
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0  # a clean stop
    assert "sandbox / sandbox-password" in "\n".join(placeholders)
    out = done.stdout
    sent_json, *_ = re.findall(r'\{"status": "success".*?\}\]\}', out)
    assert json.loads(sent_json)["results"][0]["code"] == 2000
    assert re.search(r"\b1701:\d+", out)
    assert "HTTP/1.1 429 Too Many Requests" in out
    assert re.search(r"(?i)retry-after: 2\r?\n", out)
    sent = json.loads(out[out.rindex('{"count"') :])  # curl -s adds no newline: the last body
    assert sent["count"] == 2
    assert [m["text"] for m in sent["sent"]] == ["Your OTP is 123456", "Hello"]  # not 654321


def test_the_start_flags_and_the_control_subcommands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [str(SCRIPT), "sandbox", "--port", "0", "--template", "welcome", "--template", "bye"]
    argv += ["--isms-credits", "1", "--waba-credits", "7"]
    with running_sandbox(argv) as (_process, url, placeholders):
        shown = "\n".join(placeholders)
        assert "WhatsApp templates: bye, welcome" in shown
        assert "iSMS 1, sms.com.my 1000000, WhatsApp 7" in shown
        assert "AppId / AppSecret: sandbox-app / sandbox-app-secret" in shown
        assert "From (WABA number): 60111111111" in shown
        monkeypatch.setenv("SANDBOX_URL", url)

        def run(*args: str) -> tuple[int, Any]:
            code = main(["sandbox", *args])
            captured = capsys.readouterr()
            return code, json.loads(captured.out or captured.err)

        body = {
            "un": "sandbox",
            "pwd": "sandbox-password",
            "agreedterm": "YES",
            "type": "1",
            "messages": [{"dstno": "60123456789", "msg": "hi"}],
        }
        with httpx.Client(base_url=url, timeout=10) as http:
            code, faults = run("fault", "code", "--code", "-1003", "--times", "all")
            assert (code, faults["faults"][0]["times"]) == (0, None)
            assert http.post("/isms_send_json.php", json=body).json()["code"] == -1003
            assert run("clear-faults") == (0, {"faults": []})
            assert http.post("/isms_send_json.php", json=body).json()["total_success"] == 1
            assert http.post("/isms_send_json.php", json=body).json()["code"] == -1004  # 1 credit
            code, sent = run("sent", "--to", "60123456789")
            assert (code, sent["count"]) == (0, 1)
            code, inbound = run("inbound", "60123456789", "hello")
            assert (code, inbound["webhook"]) == (0, False)
            code, refused = run("reports")
            assert code == 2
            assert "--webhook" in refused["error"]
            assert run("reset") == (0, {"reset": True})
            assert run("sent")[1]["count"] == 0
            assert http.post("/isms_send_json.php", json=body).json()["total_success"] == 1
        code, bad = run("fault", "code")  # no --code: the sandbox says why
        assert code == 2
        assert "code=" in bad["error"]


def test_control_subcommands_say_in_one_line_when_no_sandbox_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sandbox", "sent", "--url", "http://127.0.0.1:9"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: no sandbox answered at http://127.0.0.1:9")
    assert error.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--host", "0.0.0.0"], "loopback"),  # noqa: S104 - refused, which is the point
        (["--webhook", "http://127.0.0.1:9/hooks"], "go together"),
        (["--webhook", "http://192.0.2.1/hooks", "--webhook-token", TOKEN], "only calls back"),
    ],
)
def test_bad_start_flags_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    assert main(["sandbox", "--port", "0", *args]) == 2
    error = capsys.readouterr().err
    assert problem in error
    assert error.count("\n") == 1


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[list[Any], str]]:
    events: list[Any] = []

    async def record(event: Any) -> None:
        events.append(event)

    async with serve(WebhookReceiver(secret=TOKEN, on_delivery=record)) as url:
        yield events, url


async def wait_for(events: list[Any], count: int) -> None:
    """Poll: the events come from another process, there is nothing to wait on here."""
    with anyio.fail_after(30):
        while len(events) < count:  # noqa: ASYNC110
            await anyio.sleep(0.05)


async def test_a_sandbox_process_sends_late_repeated_reports_to_the_webhook(
    receiver: tuple[list[Any], str],
) -> None:
    events, hooks_url = receiver
    argv = [str(SCRIPT), "sandbox", "--port", "0", "--webhook", hooks_url]
    argv += ["--webhook-token", TOKEN, "--report-delay", "3", "--queued-reports", "1"]
    argv += ["--delivery-outcome", "failed"]
    with running_sandbox(argv) as (_process, url, placeholders):
        assert "outcome failed" in placeholders[-1]
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            answer = await http.get(
                "/websmsapi/ISendSMS.aspx",
                params={
                    "username": "sandbox",
                    "password": "sandbox-password",
                    "mobile": "60123456789",
                    "message": "hi",
                    "type": "1",
                },
            )
        assert events == []  # the first report is 1.5 s away
        await wait_for(events, 2)
    message_id = answer.text.split(":")[1]
    assert [(e.message_id, e.status) for e in events] == [
        (message_id, DeliveryStatus.QUEUED),
        (message_id, DeliveryStatus.FAILED),
    ]


def test_the_console_script_is_the_one_installed_here() -> None:
    assert SCRIPT.exists(), "run `make install`: the tests start the installed console script"
    assert os.access(SCRIPT, os.X_OK)
