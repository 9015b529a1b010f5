"""Every ```python block of README.md and of the docs' pages runs, against a mocked iSMS on
every base URL."""

from __future__ import annotations

import base64
import json
import re
import shlex
import warnings
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

from messaging_async import PlainHttpWarning
from messaging_async.cli import main
from messaging_async.testing import SANDBOX_PASSWORD, SANDBOX_USERNAME, FakeGateway

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    block
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
]


def fake_gateway(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("isms_send_json.php"):
        messages = json.loads(request.content)["messages"]
        results = [
            {"dstno": m["dstno"], "code": 2000, "sms_id": str(i)} for i, m in enumerate(messages)
        ]
        return httpx.Response(200, json={"total_credits_used": len(results), "results": results})
    if path.endswith("isms_send_all_id.php"):
        return httpx.Response(200, text="2000 = SUCCESS:42")
    if path.endswith("isms_send_waba.php"):
        body = json.loads(request.content)
        return httpx.Response(
            200, json={"statusCode": "OK", "messageId": body["To"], "requestId": "r"}
        )
    if "/websmsapi/" in path:
        return sms_com_my(request)
    if path.endswith("isms_balance_json.php"):
        return httpx.Response(200, json={"balance": 100})
    return httpx.Response(404)


def sms_com_my(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("creditsLeft.aspx"):
        return httpx.Response(200, text="Used: 10 Remaining: 90")
    if path.endswith("ITransferCredits.aspx"):
        return httpx.Response(200, text="1707")
    if path.endswith("ISendSMSNoDR.aspx"):
        return httpx.Response(200, text="1701")
    return httpx.Response(200, text="1701:1143000123")


def test_readme_fastapi_webhook_example_receives_callbacks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The "Receiving webhooks" example, run for real: callbacks through httpx's ASGI transport."""
    (code,) = [block for block in BLOCKS if "app.mount" in block]
    secret = "readme-test-secret-0123456789"
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(code, "<docs example>", "exec"), namespace)  # noqa: S102
    payload = base64.b64encode(
        json.dumps({"from": "60123456789", "type": "text", "text": "hi"}).encode()
    )

    async def gateway_calls() -> list[int]:
        transport = httpx.ASGITransport(app=namespace["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://your.host") as gateway:
            answers = [
                await gateway.post(
                    f"/hooks/isms/whatsapp?token={secret}", data={"response": payload.decode()}
                ),
                await gateway.get(f"/hooks/smscommy/delivery?token={secret}&MsgId=9&Status=6"),
                await gateway.get(f"/hooks/smscommy/delivery?token={secret}&MsgId=9&Status=6"),
                await gateway.get(f"/hooks/smscommy/incoming?token={secret}&Sender=6019&Msg=hi"),
                await gateway.get("/hooks/smscommy/delivery?token=wrong&MsgId=9&Status=6"),
            ]
        return [answer.status_code for answer in answers]

    assert anyio.run(gateway_calls) == [200, 200, 200, 200, 401]
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "WhatsApp from 60123456789 type text",
        "message 9 is delivered",
        "SMS from 6019",
    ]


def test_readme_command_line_example_runs(
    sandbox: tuple[FakeGateway, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every command of docs/cli.md's first block, against a sandbox this test serves."""
    fake, url = sandbox
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"# Command line.*?```sh\n(.*?)```", text, flags=re.S)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    (export,) = [line for line in lines if line.startswith("export ")]
    for assignment in shlex.split(export)[1:]:
        name, value = assignment.split("=", 1)
        monkeypatch.setenv(name, url if name.endswith("BASE_URL") else value)
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "recipients.csv").open("w", encoding="utf-8") as handle:
        handle.write("phone,name\n60123456789,Ahmad\n60198765432,Mei Ling\n")
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("messaging-async ")]
    codes = [main(args) for args in commands if args[0] != "sandbox"]
    assert codes == [0] * (len(commands) - 1)
    assert [m.to for m in fake.sent] == ["60123456789", "60198765432", "60123456789"]
    assert '"from": "60123456789"' in capsys.readouterr().out


def test_cli_journalled_blasts_example_runs(
    sandbox: tuple[FakeGateway, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/cli.md's block on journalled and WhatsApp blasts, as written, against a sandbox:
    the second SMS blast sends nothing, the WhatsApp one sends each row once."""
    fake, url = sandbox
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"## Journalled blasts.*?```sh\n(.*?)```", text, flags=re.S)
    assert block is not None
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    (export,) = [line for line in lines if line.startswith("export ")]
    for assignment in shlex.split(export)[1:]:
        monkeypatch.setenv(*assignment.split("=", 1))
    for name, value in {"USERNAME": SANDBOX_USERNAME, "PASSWORD": SANDBOX_PASSWORD}.items():
        monkeypatch.setenv(f"ISMS_{name}", value)
    monkeypatch.setenv("ISMS_BASE_URL", url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orders.csv").write_text(
        "phone,name,order\n60123456789,Ahmad,A-1\n60198765432,Mei Ling,A-2\n", encoding="utf-8"
    )
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("messaging-async ")]
    assert [main(args) for args in commands] == [0] * len(commands)
    sms = [m.to for m in fake.sent if m.gateway == "isms"]
    whatsapp = [m for m in fake.sent if m.gateway == "whatsapp"]
    assert sorted(sms) == ["60123456789", "60198765432"]  # once: the second run resumed
    assert sorted(m.to for m in whatsapp) == sorted(sms)
    assert sorted(list((m.params or {}).values()) for m in whatsapp) == [
        ["Ahmad", "A-1"],
        ["Mei Ling", "A-2"],
    ]
    assert (tmp_path / "wa-1127.csv").read_text(encoding="utf-8").count("\n") == 3
    assert "job 'ship-1127': 2 recipients" in capsys.readouterr().out


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 5


# Examples that need a PostgreSQL server run in tests/test_docs_workers.py, against the
# session's throwaway cluster.
RUNNABLE = [block for block in BLOCKS if "app.mount" not in block and "MESSAGING_DSN" not in block]


@pytest.mark.parametrize("code", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_readme_example_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    with (
        respx.mock(assert_all_called=False) as mock,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        mock.route(host__regex=r".*").mock(side_effect=fake_gateway)
        exec(compile(code, "<docs example>", "exec"), {"__name__": "__readme__"})  # noqa: S102
    # The only warning an example may raise: sms.com.my's documented base URL is plain http.
    assert all(issubclass(w.category, PlainHttpWarning) for w in caught), [
        str(w.message) for w in caught
    ]
    printed = capsys.readouterr().out
    assert "not sent" not in printed
    assert "may have been sent" not in printed
    assert "secret stays" not in printed
