"""The pytest plugin: fixtures come from the installed entry point, by name only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from messaging_async import IsmsClient, SmsComMyClient
from messaging_async.testing import FakeGateway, Fault


async def test_fixtures_are_wired_to_one_sandbox(
    fake_gateway: FakeGateway, isms_client: IsmsClient, smscommy_client: SmsComMyClient
) -> None:
    await isms_client.send_sms("60123456789", "Your OTP is 123456")
    await isms_client.send_whatsapp_template("60123456789", "otp", params=["123456"])
    await smscommy_client.send_sms("60123456789", "Hello")
    assert [m.gateway for m in fake_gateway.sent_to("60123456789")] == [
        "isms",
        "whatsapp",
        "smscommy",
    ]
    assert fake_gateway.sent[0].text == "Your OTP is 123456"


async def test_faults_reach_the_wired_clients(
    fake_gateway: FakeGateway, isms_client: IsmsClient
) -> None:
    fake_gateway.inject(Fault.REFUSE, host="www.isms.com.my")
    outcome = await isms_client.send_sms("60123456789", "failover")
    assert outcome.ok
    assert len(fake_gateway.sent) == 1


USER_TESTS = """
import re
from pathlib import Path

import pytest
import sniffio


async def send_otp(client, number):
    return await client.send_sms(number, "Your OTP is 123456")


{marker}
async def test_the_fixtures_work(isms_client, smscommy_client, fake_gateway):
    assert (await send_otp(isms_client, "60123456789")).ok
    assert (await smscommy_client.send_sms("60123456789", "hello")).ok
    assert [m.gateway for m in fake_gateway.sent_to("60123456789")] == ["isms", "smscommy"]
    print("ran on", sniffio.current_async_library())
"""

ANYIO_BACKENDS = """

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""


def run_user_tests(pytester: pytest.Pytester, marker: str, *args: str) -> pytest.RunResult:
    extra = ANYIO_BACKENDS if "anyio" in marker else ""
    pytester.makepyfile(test_user=USER_TESTS.format(marker=marker) + extra)
    return pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", *args
    )


def test_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    """pytest-asyncio's default mode runs only async fixtures it was told about."""
    result = run_user_tests(pytester, "@pytest.mark.asyncio", "-W", "error")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ran on asyncio*"])


def test_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    result = run_user_tests(pytester, "", "-o", "asyncio_mode=auto", "-W", "error")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("marker", "mode"), [("@pytest.mark.anyio", "anyio_mode=strict"), ("", "anyio_mode=auto")]
)
def test_anyio_plugin_on_asyncio_and_trio(
    pytester: pytest.Pytester, marker: str, mode: str
) -> None:
    """Under anyio's plugin the clients open on the test's own loop, trio's included
    (pytest-asyncio installed, in its default strict mode)."""
    pytester.makepyfile(test_user=USER_TESTS.format(marker=marker) + ANYIO_BACKENDS)
    result = pytester.runpytest_subprocess(
        "-s",
        "-p",
        "no:cacheprovider",
        "-o",
        mode,
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*ran on asyncio*", "*ran on trio*"])


def test_without_an_async_plugin_the_error_says_what_to_install(pytester: pytest.Pytester) -> None:
    result = run_user_tests(pytester, "", "-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*run the test with pytest-asyncio*"])


def test_the_docs_example_runs_in_strict_mode(pytester: pytest.Pytester) -> None:
    """docs/testing.md's pytest example, as a user's test file, under pytest-asyncio's default
    mode."""
    page = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    (example,) = [block for block in blocks if "isms_client" in block]
    pytester.makepyfile(test_readme_example=example)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    result.assert_outcomes(passed=1)
