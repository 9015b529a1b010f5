"""Numbers (CONTRACT D), encodings and credit estimates: pure functions, no network."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging_async import (
    Encoding,
    ValidationError,
    choose_encoding,
    estimate_credits,
    to_ucs2_hex,
)
from messaging_async.phone import calling_code, mask_number, normalize_number
from messaging_async.text import (
    check_text,
    checked_payload,
    is_gsm_text,
    message_units,
    resolve_encoding,
)


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        ("60123456789", "60123456789"),
        ("+60 12-345 6789", "60123456789"),
        ("+60 (12) 345.6789", "60123456789"),
        ("0060123456789", "60123456789"),
        ("  +6012 345 6789 ", "60123456789"),
    ],
)
def test_numbers_normalise_to_digits(raw: str, wire: str) -> None:
    assert normalize_number(raw) == wire


def test_local_number_needs_a_default_country() -> None:
    with pytest.raises(ValidationError, match="local format") as caught:
        normalize_number("012-345 6789", index=7)
    assert caught.value.field == "to"
    assert caught.value.index == 7
    assert normalize_number("012-345 6789", default_calling_code="60") == "60123456789"


@pytest.mark.parametrize(
    "raw", ["", "12345", "6" * 16, "6012abc4567", "+60 12 345 678x", "٦٠١٢٣٤٥٦٧٨٩"]
)
def test_bad_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        normalize_number(raw)


def test_a_non_string_number_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be a str"):
        normalize_number(60123456789)


def test_calling_code_accepts_iso_or_digits() -> None:
    assert calling_code("MY") == "60"
    assert calling_code("+60") == "60"
    assert calling_code("sg") == "65"
    with pytest.raises(ValidationError):
        calling_code("Malaysia")


def test_mask_number_hides_the_middle() -> None:
    assert mask_number("60123456789") == "6012*****89"
    assert "3456" not in mask_number("60123456789")
    assert mask_number("123") == "***"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Your OTP is 123456", Encoding.GSM),
        ("Price: $5 @ shop_1 #deal {now} [x] ~^|\\", Encoding.GSM),
        ("line1\nline2\r", Encoding.GSM),
        ("back`tick", Encoding.UNICODE),  # ASCII but not GSM 03.38
        ("tab\there", Encoding.UNICODE),
        ("café", Encoding.UNICODE),  # GSM 03.38 but not 7-bit ASCII
        ("你好", Encoding.UNICODE),
        ("ok 👍", Encoding.UNICODE),
    ],
)
def test_choose_encoding_is_cautious(text: str, encoding: Encoding) -> None:
    assert choose_encoding(text) is encoding


def test_forcing_gsm_is_allowed_only_for_gsm_characters() -> None:
    assert resolve_encoding("café £5", Encoding.GSM) is Encoding.GSM
    assert resolve_encoding("hello", Encoding.UNICODE) is Encoding.UNICODE
    with pytest.raises(ValidationError, match=r"outside the GSM 03\.38"):
        resolve_encoding("你好", Encoding.GSM)
    assert is_gsm_text("ÄÖÜ€")
    assert not is_gsm_text("ą")


def test_units_and_credit_estimates() -> None:
    assert message_units("abc{}", Encoding.GSM) == 7  # extension characters count two
    assert message_units("👍", Encoding.UNICODE) == 2  # a surrogate pair
    assert estimate_credits("x" * 153) == 1
    assert estimate_credits("x" * 154) == 2
    assert estimate_credits("你" * 63) == 1
    assert estimate_credits("你" * 64) == 2
    assert estimate_credits("hi", Encoding.UNICODE) == 1


def test_ucs2_hex_matches_known_vectors() -> None:
    assert to_ucs2_hex("ABC") == "004100420043"
    assert to_ucs2_hex("你好") == "4F60597D"
    assert to_ucs2_hex("😀") == "D83DDE00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("x" * 901, "at most 900"),
        ("bad \ud800 surrogate", "lone surrogate"),
        (None, "must be a str"),
        (b"bytes", "must be a str"),
    ],
)
def test_check_text_refuses_what_no_gateway_carries(text: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        check_text(text, max_length=900, index=3)
    assert caught.value.field == "text"
    assert "surrogate" not in str(caught.value) or "bad" not in str(caught.value)  # never quotes it


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(st.text(max_size=30), st.text(alphabet="ab`\x07é€ 你", max_size=12)),
    forced=st.sampled_from([None, Encoding.GSM, Encoding.UNICODE]),
)
def test_checked_payload_agrees_with_check_text_then_resolve_encoding(
    text: str, forced: Encoding | None
) -> None:
    """The per-recipient fast path must decide exactly as the two careful functions do."""
    try:
        checked = check_text(text, max_length=20)
        expected: object = (checked, resolve_encoding(checked, forced))
    except ValidationError as exc:
        expected = str(exc)
    try:
        got: object = checked_payload(text, forced, max_length=20)
    except ValidationError as exc:
        got = str(exc)
    assert got == expected


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        ("+60 012 345 6789", "60123456789"),  # a trunk 0 after the calling code is dropped
        ("+60 (0)12-345 6789", "60123456789"),
        ("0060 (0)12 345 6789", "60123456789"),
        ("600123456789", "60123456789"),
        ("+60 011 2345 6789", "601123456789"),
        ("+44 (0)20 7946 0000", "442079460000"),
        ("+49 (0)30 1234567", "49301234567"),  # a country outside the length table
        ("+39 06 1234 5678", "390612345678"),  # Italy: the 0 is part of the number
        ("+39 (0)6 1234 5678", "390612345678"),
        ("+378 0549 123456", "3780549123456"),  # San Marino
        ("+379 06 6988 1234", "3790669881234"),  # Vatican City
        ("+39 333 123 4567", "393331234567"),
    ],
)
def test_a_trunk_zero_is_dropped_only_where_it_is_a_trunk_prefix(raw: str, wire: str) -> None:
    assert normalize_number(raw) == wire


def test_a_local_italian_number_keeps_its_zero() -> None:
    assert normalize_number("06 1234 5678", default_calling_code=calling_code("IT")) == (
        "390612345678"
    )
    assert normalize_number("012-345 6789", default_calling_code=calling_code("MY")) == (
        "60123456789"
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("+6011111111", "8 digits after +60"),  # a Malaysian mobile has 9 or 10
        ("6012345678901", "11 digits after +60"),
        ("+60 0111 1111", "7 digits after +60"),
        ("+65 0912 3456", "no number begins with 0"),  # Singapore has no trunk prefix
        ("+65 912 345", "6 digits after +65"),
        ("+1 212 555 010", "9 digits after +1"),
        ("+1 (0)212 555 0100", "(0) after +1"),  # no trunk prefix there: not just dropped
        ("+65 (0)9123 4567", "(0) after +65"),
    ],
)
def test_a_number_too_short_or_long_for_its_country_is_refused(raw: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)) as caught:
        normalize_number(raw, index=3)
    assert (caught.value.field, caught.value.index) == ("to", 3)


@pytest.mark.parametrize("raw", ["\ud800", "+60\ud80012345678", "6012345678\udfff", "\ud800" * 30])
def test_a_lone_surrogate_gives_an_error_that_serialises_as_utf8(raw: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_number(raw)
    # What a web framework does with the message: it must not raise UnicodeEncodeError.
    json.dumps({"detail": str(caught.value)}, ensure_ascii=False).encode("utf-8")
    mask_number(raw).encode("utf-8")


@pytest.mark.parametrize("country", [60, None, b"MY", "\ud800", "60\ud800"])
def test_a_bad_default_country_is_a_validation_error(country: object) -> None:
    with pytest.raises(ValidationError) as caught:
        calling_code(country)
    assert caught.value.field == "default_country"
    str(caught.value).encode("utf-8")


@pytest.mark.parametrize(
    "text",
    [
        " ",
        "   ",
        "\n\t",
        "\u3000",
        " \r\n ",
        "\u200b",  # zero-width space
        "\ufeff\u200b \u200c\u200d",  # BOM, zero-width (non-)joiners
        "\u2060\u00ad\u180e",  # word joiner, soft hyphen, Mongolian vowel separator
        "\u3164\u2800",  # Hangul filler, blank Braille pattern
    ],
)
def test_whitespace_only_text_is_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="whitespace") as caught:
        checked_payload(text, None, max_length=900, index=2)
    assert (caught.value.field, caught.value.index) == ("text", 2)
    with pytest.raises(ValidationError, match="whitespace"):
        check_text(text, max_length=900)


def test_a_text_with_a_visible_character_among_invisible_ones_is_kept() -> None:
    assert check_text("\u200bOK\ufeff", max_length=900) == "\u200bOK\ufeff"
