"""Tolerant readers for the numbers gateways write in many ways. Pure: no I/O."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_LEADING_CODE = re.compile(r"\s*(-?\d+)\b")


def parse_code(value: object) -> int | None:
    """A code as the gateway may write it: ``2000``, ``"2000"``, ``"-1004 = INSUFFICIENT…"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _LEADING_CODE.match(value)
        return int(match.group(1)) if match else None
    return None


def parse_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
