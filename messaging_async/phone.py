"""Destination numbers: normalisation to the digits-only form both gateways want, and masking.

Both gateways take international numbers as digits only (``60123456789``): no ``+``,
spaces, dashes, dots or brackets. A local number written with its trunk ``0``
(``012-345 6789``) is only turned into an international one when the client was given a
default country; guessing a country would send a stranger an OTP.
"""

from __future__ import annotations

import re

from .errors import ValidationError

__all__ = ["calling_code", "mask_number", "normalize_number"]

MIN_DIGITS = 8
MAX_DIGITS = 15  # E.164

_SEPARATORS = re.compile(r"[\s\-.()\[\]]+")

# ISO 3166 codes a caller is likely to name as the default country; any calling code
# ("60", "+60") is accepted as well.
_CALLING_CODES = {
    "MY": "60",
    "SG": "65",
    "BN": "673",
    "ID": "62",
    "TH": "66",
    "PH": "63",
    "VN": "84",
    "IN": "91",
    "CN": "86",
    "HK": "852",
    "AU": "61",
    "GB": "44",
    "US": "1",
}


def calling_code(country: str) -> str:
    """The calling code for ``country``: an ISO code such as ``"MY"`` or a code like ``"+60"``."""
    cleaned = country.strip().upper().removeprefix("+")
    if cleaned in _CALLING_CODES:
        return _CALLING_CODES[cleaned]
    if cleaned.isdigit() and 1 <= len(cleaned) <= 3 and not cleaned.startswith("0"):
        return cleaned
    known = ", ".join(sorted(_CALLING_CODES))
    raise ValidationError(
        f"default_country {country!r} is neither a calling code such as '60' nor one of {known}",
        field="default_country",
    )


def normalize_number(
    number: object, *, default_calling_code: str | None = None, index: int | None = None
) -> str:
    """Return ``number`` as wire digits, or raise ``ValidationError`` naming what is wrong.

    ``default_calling_code`` (from :func:`calling_code`) turns a local ``0…`` number into an
    international one; without it such a number is refused.
    """
    if not isinstance(number, str):
        raise ValidationError(
            f"a phone number must be a str, not {type(number).__name__}", field="to", index=index
        )
    if number.isdigit() and number.isascii() and number[0] != "0":
        digits = number  # the common case, already normalised: skip the regex
    else:
        digits = _strip_formatting(number, index)
        if digits.startswith("00"):
            digits = digits[2:]  # international dialling prefix
        elif digits.startswith("0"):
            digits = _localise(digits, default_calling_code, number, index)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise ValidationError(
            f"phone number {mask_number(number)} has {len(digits)} digits; "
            f"expected {MIN_DIGITS} to {MAX_DIGITS} in international format",
            field="to",
            index=index,
        )
    return digits


def _strip_formatting(number: str, index: int | None) -> str:
    digits = _SEPARATORS.sub("", number.strip()).removeprefix("+")
    if not (digits.isdigit() and digits.isascii()):
        raise ValidationError(
            f"phone number {mask_number(number)} holds characters other than digits and + - . ( )",
            field="to",
            index=index,
        )
    return digits


def _localise(digits: str, default_calling_code: str | None, number: str, index: int | None) -> str:
    if default_calling_code is None:
        raise ValidationError(
            f"phone number {mask_number(number)} is in local format (starts with 0); "
            "write it with its country code or give the client default_country=",
            field="to",
            index=index,
        )
    return default_calling_code + digits[1:]


def mask_number(number: object) -> str:
    """Show enough of a number to recognise it in a log, not enough to call it.

    ``60123456789`` becomes ``6012*****89``; short or odd values are masked whole.
    """
    text = str(number)
    if len(text) < 8:
        return "*" * len(text)
    if len(text) > 20:
        return text[:4] + "*" * 8 + "…"
    return text[:4] + "*" * (len(text) - 6) + text[-2:]
