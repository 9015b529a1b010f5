"""Bad input is refused before any network call, with an error that names what is wrong."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from messaging_async import Encoding, IsmsClient, OutcomeStatus, Sms, ValidationError

from .conftest import all_accepted, make_client, sent_bodies


@pytest.mark.parametrize(
    ("to", "text", "field"),
    [
        (None, "hi", "to"),
        (60123456789, "hi", "to"),
        ("", "hi", "to"),
        ("6012", "hi", "to"),
        ("6" * 10_000, "hi", "to"),
        ("0123456789", "hi", "to"),  # local format, no default_country
        ("60123456789", "", "text"),
        ("60123456789", None, "text"),
        ("60123456789", b"bytes", "text"),
        ("60123456789", "x" * 901, "text"),
        ("60123456789", "lone \udc00 surrogate", "text"),
    ],
)
async def test_single_send_refuses_bad_input_before_sending(to: Any, text: Any, field: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(path="/isms_send_json.php").mock(side_effect=all_accepted)
        async with make_client() as client:
            with pytest.raises(ValidationError) as caught:
                await client.send_sms(to, text)
    assert caught.value.field == field
    assert caught.value.index is None
    assert route.call_count == 0


async def test_forcing_gsm_on_chinese_is_refused() -> None:
    async with make_client(transport=httpx.MockTransport(lambda r: httpx.Response(500))) as client:
        with pytest.raises(ValidationError, match="GSM"):
            await client.send_sms("60123456789", "你好", encoding=Encoding.GSM)


async def test_default_country_turns_local_numbers_international() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(path="/isms_send_json.php").mock(side_effect=all_accepted)
        async with make_client(default_country="MY") as client:
            outcome = await client.send_sms("012-345 6789", "hi")
    assert outcome.to == "60123456789"
    assert sent_bodies(route.calls)[0]["messages"][0]["dstno"] == "60123456789"


async def test_bulk_rejects_bad_items_and_sends_the_rest() -> None:
    items: list[Any] = [
        Sms(to="60123456780", text="ok 0"),
        Sms(to="bad", text="x", ref="r1"),
        "not an Sms",
        Sms(to="60123456783", text=""),
        Sms(to="60123456784", text="ok 4"),
        None,
    ]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(path="/isms_send_json.php").mock(side_effect=all_accepted)
        async with make_client() as client:
            report = await client.send_sms_bulk(items)
    assert [o.status for o in report.outcomes] == [
        OutcomeStatus.ACCEPTED,
        OutcomeStatus.REJECTED,
        OutcomeStatus.REJECTED,
        OutcomeStatus.REJECTED,
        OutcomeStatus.ACCEPTED,
        OutcomeStatus.REJECTED,
    ]
    assert report.outcomes[1].ref == "r1"
    assert "message 2 is a str" in (report.outcomes[2].reason or "")
    assert (report.outcomes[1].reason or "").startswith("invalid input")
    assert [m["dstno"] for m in sent_bodies(route.calls)[0]["messages"]] == [
        "60123456780",
        "60123456784",
    ]


@pytest.mark.parametrize("messages", [None, "60123456789", b"raw", 42, Sms(to="1", text="x")])
async def test_bulk_refuses_a_non_iterable(messages: Any) -> None:
    async with make_client(transport=httpx.MockTransport(lambda r: httpx.Response(500))) as client:
        with pytest.raises(ValidationError, match="iterable"):
            await client.send_sms_bulk(messages)
        with pytest.raises(ValidationError, match="iterable"):
            client.stream_sms_bulk(messages)


async def test_classic_checks_its_text_once_and_its_numbers_each() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(path="/isms_send_all_id.php").mock(
            return_value=httpx.Response(200, text="2000 = SUCCESS:1")
        )
        async with make_client() as client:
            with pytest.raises(ValidationError, match="at most 700"):
                await client.send_sms_classic(["60123456789"], "x" * 701)
            assert route.call_count == 0
            report = await client.send_sms_classic(["60123456789", "nope"], "hi")
    assert [o.status for o in report.outcomes] == [OutcomeStatus.ACCEPTED, OutcomeStatus.REJECTED]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": ""}, "username"),
        ({"password": None}, "password"),
        ({"sender_id": "My Company"}, "sender_id"),
        ({"sender_id": "TooLongSender"}, "sender_id"),
        ({"sms_base_urls": "https://www.isms.com.my"}, "sms_base_urls"),
        ({"sms_base_urls": ["ftp://www.isms.com.my"]}, "sms_base_urls"),
        ({"sms_base_urls": ["https://user:pw@www.isms.com.my"]}, "sms_base_urls"),
        ({"waba_base_urls": []}, "waba_base_urls"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"retry": "often"}, "retry"),
        ({"default_country": "Atlantis"}, "default_country"),
        ({"timeout": -1}, "timeout"),
    ],
)
def test_constructor_refuses_bad_settings(overrides: dict[str, Any], field: str | None) -> None:
    settings: dict[str, Any] = {"username": "u", "password": "p"}
    settings.update(overrides)
    with pytest.raises(ValidationError) as caught:
        IsmsClient(**settings)
    assert caught.value.field == field


async def test_isms_refuses_a_seqno_it_cannot_honour() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(path="/isms_send_json.php").mock(side_effect=all_accepted)
        async with make_client() as client:
            report = await client.send_sms_bulk([Sms(to="60123456789", text="hi", seqno="k1")])
    assert report.outcomes[0].status is OutcomeStatus.REJECTED
    assert "seqno" in (report.outcomes[0].reason or "")
    assert route.call_count == 0
