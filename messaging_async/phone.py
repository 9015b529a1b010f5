"""Destination numbers: normalisation to the digits-only form both gateways want, and masking.

Both gateways take international numbers as digits only (``60123456789``): no ``+``,
spaces, dashes, dots or brackets. A local number written with its trunk ``0``
(``012-345 6789``) is only turned into an international one when the client was given a
default country; guessing a country would send a stranger an OTP.

A trunk ``0`` is never part of the international form, but people write it there
(``+60 012…``, ``+44 (0)20…``): kept, it makes another person's number. It is dropped
for the countries known to dial it, kept for those whose numbers really begin with ``0``
(Italy, San Marino, Vatican City, Côte d'Ivoire), refused where no number begins with it
(written ``(0)`` too: ``+1 (0)212…`` is refused, not silently made ``1212…``).
The table below knows national lengths for the countries this SDK's users text most; a
number too short or too long for its country is refused rather than sent to a stranger.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from .errors import ValidationError

__all__ = ["calling_code", "mask_number", "normalize_number"]

MIN_DIGITS = 8
MAX_DIGITS = 15  # E.164

_SEPARATORS = re.compile(r"[\s\-.()\[\]]+")
# "+44 (0)20…", "0060 (0)12…": a trunk 0 marked as such after the calling code.
_MARKED_TRUNK = re.compile(r"\s*(?:\+|00)\s*(\d{1,3})[\s\-.]*\(\s*0\s*\)")

Trunk = Literal["0", "none", "keep"]


class Country(NamedTuple):
    """Dialling rules of one calling code.

    ``trunk``: ``"0"`` the country dials a trunk 0 that the international form drops;
    ``"keep"`` its numbers begin with 0 even internationally; ``"none"`` no number there
    begins with 0. ``national``: the digits after the calling code, fewest and most
    (``None``: not known here, only the E.164 bounds apply).
    """

    trunk: Trunk
    national: tuple[int, int] | None = None


# Calling code → rules. Lengths are of mobile numbers where SMS goes (Malaysia: 1X + 7
# digits, 11/15 + 8), kept generous elsewhere: refusing a real number is worse than the
# E.164 bounds alone.
COUNTRIES: dict[str, Country] = {
    "60": Country("0", (9, 10)),  # Malaysia
    "65": Country("none", (8, 8)),  # Singapore
    "673": Country("none", (7, 7)),  # Brunei
    "62": Country("0", (7, 12)),  # Indonesia
    "66": Country("0", (8, 9)),  # Thailand
    "63": Country("0", (8, 10)),  # Philippines
    "84": Country("0", (9, 10)),  # Vietnam
    "91": Country("0", (10, 10)),  # India
    "86": Country("0", (9, 11)),  # China
    "852": Country("none", (8, 8)),  # Hong Kong
    "853": Country("none", (8, 8)),  # Macau
    "61": Country("0", (9, 9)),  # Australia
    "64": Country("0", (8, 10)),  # New Zealand
    "44": Country("0", (7, 10)),  # United Kingdom
    "1": Country("none", (10, 10)),  # United States, Canada (NANP)
    "39": Country("keep", (6, 11)),  # Italy: 06… stays 06…
    "378": Country("keep", (6, 10)),  # San Marino
    "379": Country("keep", (6, 11)),  # Vatican City (also reached through +39 06 698)
    "225": Country("keep", (10, 10)),  # Côte d'Ivoire since 2021
    "81": Country("0"),  # Japan
    "82": Country("0"),  # South Korea
    "886": Country("0"),  # Taiwan
    "855": Country("0"),  # Cambodia
    "95": Country("0"),  # Myanmar
    "92": Country("0"),  # Pakistan
    "880": Country("0"),  # Bangladesh
    "94": Country("0"),  # Sri Lanka
    "971": Country("0"),  # United Arab Emirates
    "966": Country("0"),  # Saudi Arabia
    "90": Country("0"),  # Turkey
    "49": Country("0"),  # Germany
    "33": Country("0"),  # France
    "31": Country("0"),  # Netherlands
    "32": Country("0"),  # Belgium
    "41": Country("0"),  # Switzerland
    "43": Country("0"),  # Austria
    "353": Country("0"),  # Ireland
    "27": Country("0"),  # South Africa
    "34": Country("none"),  # Spain
    "351": Country("none"),  # Portugal
    "45": Country("none"),  # Denmark
    "47": Country("none"),  # Norway
    "30": Country("none"),  # Greece
    "974": Country("none"),  # Qatar
}

# Two-digit calling code → the fewest and most digits of a whole wire number there, for
# ``normalize_number``'s usual case: one dict look-up and two comparisons in place of the
# E.164 bounds, the ``Country`` and its national lengths (5,159 → 4,409 instructions a
# call, callgrind, Python 3.11). Clamped to the E.164 bounds, so those hold too.
_WIRE_LENGTHS = {
    code: (max(MIN_DIGITS, 2 + country.national[0]), min(MAX_DIGITS, 2 + country.national[1]))
    for code, country in COUNTRIES.items()
    if len(code) == 2 and country.national is not None
}

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
    "IT": "39",
    "SM": "378",
    "VA": "379",
}


def calling_code(country: object) -> str:
    """The calling code for ``country``: an ISO code such as ``"MY"`` or a code like ``"+60"``."""
    if not isinstance(country, str):
        raise ValidationError(
            f"default_country must be a str such as 'MY' or '60', not {type(country).__name__}",
            field="default_country",
        )
    cleaned = country.strip().upper().removeprefix("+")
    if cleaned in _CALLING_CODES:
        return _CALLING_CODES[cleaned]
    if cleaned.isdigit() and cleaned.isascii() and 1 <= len(cleaned) <= 3 and cleaned[0] != "0":
        return cleaned
    known = ", ".join(sorted(_CALLING_CODES))
    raise ValidationError(
        f"default_country {_printable(country)} is neither a calling code such as '60' "
        f"nor one of {known}",
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
        # The usual number, settled here in one look-up (one per recipient in a bulk
        # send): already in wire form, a two-digit calling code, no trunk 0 after it, a
        # length that country has. What ``_check_national`` would return for it unchanged.
        bounds = _WIRE_LENGTHS.get(number[:2])
        # The length first: it is at least MIN_DIGITS, so ``number[2]`` exists.
        if bounds is not None and bounds[0] <= len(number) <= bounds[1] and number[2] != "0":
            return number
        digits = number  # already normalised: skip the regex
    else:
        digits = _strip_formatting(number, index)
        if digits.startswith("00"):
            digits = digits[2:]  # international dialling prefix
        elif digits.startswith("0"):
            digits = _localise(digits, default_calling_code, number, index)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise _invalid(
            number,
            f"has {len(digits)} digits; expected {MIN_DIGITS} to {MAX_DIGITS} "
            "in international format",
            index,
        )
    return _check_national(digits, number, index)


def _strip_formatting(number: str, index: int | None) -> str:
    marked = _MARKED_TRUNK.match(number)
    if marked:
        trunk = COUNTRIES.get(marked[1], Country("0")).trunk
        if trunk == "none":  # "+1 (0)212…": a mistake, not a trunk; which number is meant?
            raise _invalid(
                number, f"has a (0) after +{marked[1]}, where numbers have no trunk 0", index
            )
        if trunk == "0":
            number = marked[1] + number[marked.end() :]  # "+44 (0)20…" → "4420…"
    digits = _SEPARATORS.sub("", number.strip()).removeprefix("+")
    if not (digits.isdigit() and digits.isascii()):
        raise _invalid(number, "holds characters other than digits and + - . ( )", index)
    return digits


def _localise(digits: str, default_calling_code: str | None, number: str, index: int | None) -> str:
    if default_calling_code is None:
        raise _invalid(
            number,
            "is in local format (starts with 0); write it with its country code or give "
            "the client default_country=",
            index,
        )
    country = COUNTRIES.get(default_calling_code)
    if country is not None and country.trunk == "keep":
        return default_calling_code + digits  # Italy: 06 1234 5678 → 39 06 1234 5678
    return default_calling_code + digits[1:]


def _check_national(digits: str, number: str, index: int | None) -> str:
    """Drop a trunk 0 written after the calling code; refuse a length the country never has.

    Calling codes are prefix-free, so at most one of the three prefixes is in the table;
    two-digit codes (Malaysia's among them) are tried first. Bulk sends call this once per
    recipient, so the common case allocates nothing.
    """
    size = 2
    country = COUNTRIES.get(digits[:2])
    if country is None:
        size = 1 if (country := COUNTRIES.get(digits[:1])) is not None else 3
        if country is None and (country := COUNTRIES.get(digits[:3])) is None:
            return digits  # a calling code this table does not describe: E.164 bounds only
    trunk, national = country.trunk, country.national  # no iterator: C-level getters
    if digits[size] == "0" and trunk != "keep":
        if trunk == "none":
            raise _invalid(
                number, f"has a 0 after +{digits[:size]}, where no number begins with 0", index
            )
        digits = digits[:size] + digits[size + 1 :]  # "+60 012…": not part of the number
    if national is not None and not national[0] <= len(digits) - size <= national[1]:
        fewest, most = national
        expected = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        raise _invalid(
            number,
            f"has {len(digits) - size} digits after +{digits[:size]}; numbers there "
            f"have {expected}",
            index,
        )
    return digits


def _invalid(number: str, problem: str, index: int | None) -> ValidationError:
    return ValidationError(f"phone number {mask_number(number)} {problem}", field="to", index=index)


def mask_number(number: object) -> str:
    """Show enough of a number to recognise it in a log, not enough to call it.

    ``60123456789`` becomes ``6012*****89``; short or odd values are masked whole. The
    result is always encodable text (a lone surrogate becomes ``\\ud800``), so an error
    or a log line carrying it can be serialised as UTF-8.
    """
    text = str(number)
    if len(text) < 8:
        return "*" * len(text)
    if len(text) > 20:
        return _printable(text[:4], quote=False) + "*" * 8 + "…"
    return _printable(text[:4], quote=False) + "*" * (len(text) - 6) + _printable(text[-2:], False)


def _printable(text: str, quote: bool = True) -> str:
    """``text`` safe to put in a message: quoted like ``repr`` or escaped if not UTF-8-able."""
    if quote:
        return repr(text)[:40]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
