"""Acceptance: wire bodies equal CONTRACT A1/A2 field for field (respx captures)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging_async import Encoding, OutcomeStatus, Sms
from messaging_async.isms import _wire

from .conftest import CLASSIC_URL, JSON_URL, all_accepted, make_client, sent_bodies
from .gateway import PASSWORD, USERNAME


def numbered(count: int, text: str = "Hi {i}") -> list[Sms]:
    return [Sms(to=f"6012{i:07d}", text=text.format(i=i), ref=i) for i in range(count)]


@pytest.mark.parametrize(
    ("count", "chunk_sizes"), [(0, []), (1, [1]), (50, [50]), (51, [50, 1]), (120, [50, 50, 20])]
)
async def test_json_bodies_for_each_chunk_size(count: int, chunk_sizes: list[int]) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(JSON_URL).mock(side_effect=all_accepted)
        async with make_client(max_concurrency=1) as client:
            report = await client.send_sms_bulk(numbered(count))
    bodies = sent_bodies(route.calls)
    assert [len(body["messages"]) for body in bodies] == chunk_sizes
    expected_messages = [{"dstno": f"6012{i:07d}", "msg": f"Hi {i}"} for i in range(count)]
    assert [message for body in bodies for message in body["messages"]] == expected_messages
    for body in bodies:
        assert body == {
            "un": USERNAME,
            "pwd": PASSWORD,
            "type": "1",
            "agreedterm": "YES",
            "sendid": "MyCo",
            "messages": body["messages"],
        }
        assert list(body) == ["un", "pwd", "type", "agreedterm", "sendid", "messages"]
    for call in route.calls:
        assert call.request.headers["content-type"] == "application/json"
        assert call.request.method == "POST"
        assert call.request.url.query == b""
    assert [outcome.index for outcome in report.outcomes] == list(range(count))
    assert report.counts[OutcomeStatus.ACCEPTED] == count


async def test_mixed_encodings_never_share_a_chunk() -> None:
    texts = ["Hello", "你好", "Selamat pagi", "مرحبا", "ok 👍", "Price $5", "café"]
    messages = [Sms(to=f"6013{i:07d}", text=texts[i % len(texts)]) for i in range(140)]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(JSON_URL).mock(side_effect=all_accepted)
        async with make_client() as client:
            report = await client.send_sms_bulk(messages)
    assert report.all_accepted
    sent_types: dict[str, str] = {}
    for body in sent_bodies(route.calls):
        assert len(body["messages"]) <= 50
        kinds = {"1" if message["msg"].isascii() else "2" for message in body["messages"]}
        assert kinds == {body["type"]}, "a chunk mixes encodings or has the wrong type"
        for message in body["messages"]:
            sent_types[message["dstno"]] = body["type"]
    assert len(sent_types) == 140
    assert sum(1 for kind in sent_types.values() if kind == "2") == 80  # 4 of every 7 texts


async def test_forced_unicode_and_no_sender_id() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(JSON_URL).mock(side_effect=all_accepted)
        async with make_client(sender_id=None) as client:
            await client.send_sms("60123456789", "plain", encoding=Encoding.UNICODE)
    body = sent_bodies(route.calls)[0]
    assert body["type"] == "2"
    assert "sendid" not in body


async def test_classic_body_is_a_post_form_with_semicolons() -> None:
    numbers = [f"+60 13-{i:07d}" for i in range(51)]
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(CLASSIC_URL).mock(
            side_effect=[
                httpx.Response(200, text="2000 = SUCCESS:1143007207"),
                httpx.Response(200, text="2000 = SUCCESS:1143007208"),
            ]
        )
        async with make_client() as client:
            report = await client.send_sms_classic(numbers, "Same text for all")
    assert len(route.calls) == 2
    forms = [
        parse_qs(call.request.content.decode(), keep_blank_values=True) for call in route.calls
    ]
    first = {key: values[0] for key, values in forms[0].items()}
    assert first == {
        "un": USERNAME,
        "pwd": PASSWORD,
        "dstno": ";".join(f"6013{i:07d}" for i in range(50)),
        "msg": "Same text for all",
        "type": "1",
        "agreedterm": "YES",
        "sendid": "MyCo",
    }
    assert forms[1]["dstno"] == ["60130000050"]
    assert route.calls[0].request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert route.calls[0].request.url.query == b""
    assert report.all_accepted
    assert {outcome.message_id for outcome in report.outcomes[:50]} == {"1143007207"}
    assert report.outcomes[50].message_id == "1143007208"


async def test_classic_error_code_rejects_its_numbers() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(CLASSIC_URL).mock(return_value=httpx.Response(200, text="-1001"))
        async with make_client() as client:
            report = await client.send_sms_classic(["60123456789", "60123456788"], "Hi")
    assert [outcome.status for outcome in report.outcomes] == [OutcomeStatus.REJECTED] * 2
    assert report.outcomes[0].code == -1001
    assert report.stopped_by is not None
    assert report.stopped_by.code == -1001


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.text(st.characters(exclude_categories=["Cs"]), min_size=1), max_size=5),
    sender_id=st.one_of(st.none(), st.just("ACME")),
)
def test_the_hand_written_json_body_is_what_json_dumps_writes(
    texts: list[str], sender_id: str | None
) -> None:
    """``build_json_send`` writes the messages array itself, for speed; it must stay
    byte for byte what ``json.dumps`` would write for the same request."""
    recipients = [(f"6012{i:07d}", text) for i, text in enumerate(texts)]
    expected: dict[str, object] = {
        "un": 'u\\"',
        "pwd": "p\u00e9\n",
        "type": "2",
        "agreedterm": "YES",
    }
    if sender_id:
        expected["sendid"] = sender_id
    expected["messages"] = [{"dstno": number, "msg": text} for number, text in recipients]
    body = _wire.build_json_send(
        username='u\\"',
        password="p\u00e9\n",
        sender_id=sender_id,
        encoding=Encoding.UNICODE,
        recipients=recipients,
    )
    assert body == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
