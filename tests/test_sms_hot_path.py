"""The bulk SMS hot path's second pass (issue 17): each quicker way of building a value is
checked against the plain way it replaces, on the usual input and on the unusual."""

from __future__ import annotations

from typing import Any

import pytest

from messaging_async import IsmsClient, OutcomeStatus, Sms
from messaging_async._plan import Pending, new_pending
from messaging_async._secrets import Redactor
from messaging_async.errors import ValidationError
from messaging_async.isms import _outcomes, _wire
from messaging_async.phone import normalize_number
from messaging_async.text import Encoding

NUMBERS = ["60120000001", "60120000002", "60120000003"]
UNIT = [
    Pending(position=4, to=NUMBERS[0], ref="a", message=("one", Encoding.GSM)),
    Pending(position=5, to=NUMBERS[1], ref=None, message=("two", Encoding.GSM)),
    Pending(position=9, to=NUMBERS[2], ref={"k": 1}, message=("three", Encoding.GSM)),
]
TRIPLES = [(p.position, p.to, p.ref) for p in UNIT]
REDACT = Redactor(("p",))


def test_new_pending_is_the_named_tuple_its_constructor_builds() -> None:
    fast = new_pending(7, "60123456789", {"r": 1}, ("hi", Encoding.UNICODE))
    slow = Pending(position=7, to="60123456789", ref={"r": 1}, message=("hi", Encoding.UNICODE))
    assert type(fast) is Pending
    assert fast == slow
    assert fast._asdict() == slow._asdict()
    assert (fast.seqno, fast.content) == (None, None)
    status = OutcomeStatus.NOT_SENT
    assert fast.outcome(status, "not sent") == slow.outcome(status, "not sent")


def test_the_client_prepares_messages_as_named_tuples_field_for_field() -> None:
    isms = IsmsClient(username="u", password="p", sms_base_urls=["http://127.0.0.1:9"])
    sms = Sms(to="+60 12-345 6789", text="Hi", ref="x")
    pending = isms._prepare_sms(None, 3, sms)
    assert type(pending) is Pending
    # the item rides along as the content a journalled run's ledger fingerprints
    assert pending == Pending(3, "60123456789", "x", ("Hi", Encoding.GSM), None, sms)
    assert pending.content is sms
    numbered = isms._prepare_number(("Hi", Encoding.GSM), 2, "60123456789")
    assert numbered == Pending(2, "60123456789", None, ("Hi", Encoding.GSM), None, None)


def test_the_body_from_zipped_numbers_and_texts_is_the_body_from_pairs() -> None:
    texts = ['say "hi"\n', "ünï", "x\\y"]
    kwargs: dict[str, Any] = {
        "username": "u",
        "password": "p",
        "sender_id": "S",
        "encoding": Encoding.UNICODE,
    }
    pairs = list(zip(NUMBERS, texts, strict=True))
    zipped = _wire.build_json_send(**kwargs, recipients=zip(NUMBERS, texts, strict=True))
    assert zipped == _wire.build_json_send(**kwargs, recipients=pairs)


def answer(results: Any, code: int | None = None) -> _wire.SendAnswer:
    return _wire.SendAnswer(results=results, code=code, message=None, credits_used=None, raw={})


def accepted(number: str) -> dict[str, object]:
    return {"dstno": number, "code": 2000, "sms_id": f"id-{number[-1]}"}


@pytest.mark.parametrize(
    "parsed",
    [
        answer([accepted(n) for n in NUMBERS]),  # the usual answer: the one-pass road
        answer([accepted(NUMBERS[1]), accepted(NUMBERS[0]), accepted(NUMBERS[2])]),
        answer([accepted(NUMBERS[0]), {"dstno": NUMBERS[1], "code": -1004}]),  # fatal, short
        answer(None, code=-1008),  # a whole-request answer
        answer(None, code=2000),  # success without results
    ],
    ids=["usual", "out-of-order", "fatal-short", "whole-request", "no-results"],
)
def test_a_unit_of_pendings_gives_the_outcomes_its_triples_give(parsed: _wire.SendAnswer) -> None:
    """``chunk_outcomes`` reads a ``Pending``'s first three items as it reads a triple."""
    from_unit, fatal_unit = _outcomes.chunk_outcomes(UNIT, parsed, REDACT)
    from_triples, fatal_triples = _outcomes.chunk_outcomes(TRIPLES, parsed, REDACT)
    assert from_unit == from_triples
    assert [o.ref for o in from_unit] == [p.ref for p in UNIT]
    assert [o.index for o in from_unit] == [p.position for p in UNIT]
    assert type(fatal_unit) is type(fatal_triples)


@pytest.mark.parametrize("number", ["6", "60", "601", "6012", "6012345", "60" + "1" * 14])
def test_a_number_too_short_or_too_long_for_its_calling_code_is_refused_not_crashed(
    number: str,
) -> None:
    """The usual-number shortcut reads ``number[2]`` only once the length is known to be
    one that country has: ``"60"`` is a ``ValidationError`` naming its length, as before."""
    with pytest.raises(ValidationError, match="digits"):
        normalize_number(number)
