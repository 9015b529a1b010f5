"""The per-recipient fast paths (issue 17) give exactly what the general road gives.

Each cut that builds a recipient's outcome or report a quicker way is checked here
against the slow way it replaces, on the usual answer and on the answers that must fall
back to the general road.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from messaging_async import OutcomeStatus, phone
from messaging_async._outcomes_seq import expand
from messaging_async._secrets import Redactor
from messaging_async.errors import InvalidNumberError, ValidationError
from messaging_async.isms import _outcomes, _wire
from messaging_async.models import Outcome, new_outcome
from messaging_async.phone import MAX_DIGITS, MIN_DIGITS, normalize_number
from messaging_async.text import check_text, checked_payload, resolve_encoding

RECIPIENTS = [(4, "60120000001", "a"), (5, "60120000002", None), (9, "60120000003", {"k": 1})]
REDACT = Redactor(("p",))


def test_new_outcome_equals_the_attrs_constructor_field_for_field() -> None:
    error = InvalidNumberError("bad number", code=-1008)
    values: dict[str, Any] = {
        "to": "60123456789",
        "status": OutcomeStatus.REJECTED,
        "index": 7,
        "message_id": "m1",
        "code": -1008,
        "reason": "refused",
        "ref": ("r", 1),
        "request_id": "q1",
        "seqno": "s1",
        "error": error,
        "raw": {"code": -1008},
        "from_ledger": True,
    }
    fast = new_outcome(*values.values())
    slow = Outcome(**values)
    assert fast == slow
    assert attrs.asdict(fast, recurse=False) == attrs.asdict(slow, recurse=False)
    assert fast.error is error  # not part of ==, so checked on its own
    assert repr(fast) == repr(slow)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.to = "1"  # type: ignore[misc]


def general_road(results: list[Any]) -> list[Outcome]:
    """What ``chunk_outcomes`` gave before its one-pass path: match, then one call each."""
    matched = _outcomes.match_results([number for _, number, _ in RECIPIENTS], results)
    return [
        _outcomes.result_outcome(index, number, ref, result, REDACT)
        for (index, number, ref), result in zip(RECIPIENTS, matched, strict=True)
    ]


def answer(results: list[Any]) -> _wire.SendAnswer:
    return _wire.SendAnswer(results=results, code=None, message=None, credits_used=None, raw={})


def accepted(number: str, code: object = 2000, **extra: object) -> dict[str, object]:
    return {"dstno": number, "code": code, "sms_id": f"id-{number[-1]}", **extra}


@pytest.mark.parametrize(
    "results",
    [
        [accepted(n) for _, n, _ in RECIPIENTS],
        [accepted(n, code="2000") for _, n, _ in RECIPIENTS],
        [accepted(n, code=2000.0) for _, n, _ in RECIPIENTS],
        [{"dstno": n, "code": 2000, "trx_id": "t"} for _, n, _ in RECIPIENTS],
        [{"dstno": n, "code": 2000, "sms_id": "", "trx_id": "t"} for _, n, _ in RECIPIENTS],
    ],
    ids=["int-code", "text-code", "float-code", "trx-id", "empty-sms-id"],
)
def test_the_usual_answer_takes_the_one_pass_path_and_matches_the_general_road(
    results: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = general_road(results)
    monkeypatch.setattr(_outcomes, "result_outcome", _refuse)  # proves the fast path ran
    parsed = answer(results)
    unit = _outcomes.accepted_unit(RECIPIENTS, parsed, "")
    assert unit is not None
    outcomes = expand(unit, parsed.results)
    assert outcomes == expected
    assert [o.raw for o in outcomes] == [o.raw for o in expected]
    assert all(o.status is OutcomeStatus.ACCEPTED and o.code == 2000 for o in outcomes)


def _refuse(*args: object) -> Outcome:
    raise AssertionError("the usual answer went the general road")


A, B, C = (number for _, number, _ in RECIPIENTS)


@pytest.mark.parametrize(
    "results",
    [
        [accepted(A), accepted(B)],  # shorter than the chunk
        [accepted(B), accepted(A), accepted(C)],  # out of order
        [accepted(A), accepted("+" + B), accepted(C)],  # a number written differently
        [accepted(A), {"dstno": B, "code": -1008, "message": "bad"}, accepted(C)],  # refused
        [accepted(A), {"dstno": B, "code": -1004}, accepted(C)],  # fatal
        [accepted(A), {"dstno": B, "sms_id": "x"}, accepted(C)],  # no code
        [accepted(A), {"code": 2000, "sms_id": "x"}, accepted(C)],  # no number
        [accepted(A), {"dstno": B, "code": 2000, "sms_id": 77}, accepted(C)],  # a numeric id
        [accepted(A), {"dstno": B, "code": 2000}, accepted(C)],  # no id at all
        [accepted(A), "2000", accepted(C)],  # not an object
        [accepted(A), accepted(B), accepted(C), accepted(C)],  # longer than the chunk
    ],
)
def test_every_other_answer_gives_what_the_general_road_gives(results: list[Any]) -> None:
    assert _outcomes.accepted_unit(RECIPIENTS, answer(results), "") is None  # not the usual
    outcomes, fatal = _outcomes.chunk_outcomes(RECIPIENTS, answer(results), REDACT)
    expected = general_road(results)
    assert outcomes == expected
    assert [o.error is None for o in outcomes] == [o.error is None for o in expected]
    expected_fatal = next((o.error for o in expected if o.error and o.error.fatal), None)
    assert type(fatal) is type(expected_fatal)


@pytest.mark.parametrize("code", range(128))
def test_the_ascii_fast_check_picks_the_encoding_the_full_check_picks(code: int) -> None:
    """``checked_payload``'s printable-ASCII shortcut against ``check_text`` +
    ``resolve_encoding``, for every ASCII character (in a text, and alone where it is not
    blank)."""
    for text in (f"ab{chr(code)}cd", chr(code) + "x"):
        full = (text, resolve_encoding(check_text(text, max_length=900), None))
        assert checked_payload(text, None, max_length=900) == full


def test_smscommy_accepted_outcome_is_the_one_the_attrs_constructor_gives() -> None:
    from messaging_async.smscommy import _wire as smscommy_wire

    built = smscommy_wire.outcome(
        3,
        "60123456789",
        "r",
        "S1",
        smscommy_wire.SENT,
        "M9",
        retried=False,
        raw="1701:M9",
        redact=REDACT,
    )
    expected = Outcome(
        to="60123456789",
        status=OutcomeStatus.ACCEPTED,
        index=3,
        message_id="M9",
        code=smscommy_wire.SENT,
        ref="r",
        seqno="S1",
        raw="1701:M9",
    )
    assert built == expected
    assert built.error is None
    assert built.reason is None


def test_normalize_number_shortcut_agrees_with_the_national_check() -> None:
    """Every start of three digits, a trunk 0 or not after it, every E.164 length:
    ``normalize_number`` (with its two-digit-code shortcut) gives what ``_check_national``
    gives, the same number or the same refusal."""
    for start in range(100, 1000):
        for zero in ("", "0"):
            for length in range(MIN_DIGITS, MAX_DIGITS + 1):
                digits = (f"{start}"[:2] + zero + f"{start}"[2:] + "5" * 15)[:length]
                try:
                    expected: object = phone._check_national(digits, digits, None)
                except ValidationError as exc:
                    expected = str(exc)
                try:
                    got: object = normalize_number(digits)
                except ValidationError as exc:
                    got = str(exc)
                assert got == expected, digits
