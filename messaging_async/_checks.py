"""The clients' settings checks: each setting a constructor takes, refused with a
``ValidationError`` naming it before any connection pool is built. Split from ``_client``
(which re-exports what other modules import from it) to keep that module small."""

from __future__ import annotations

import math
from collections.abc import Sequence

import httpx

from ._transport import HTTP_BACKENDS, check_base_urls, make_timeout
from .errors import ValidationError
from .phone import calling_code
from .retry import RetryPolicy

MAX_CONCURRENCY_LIMIT = 1000


# The check_* helpers raise ValidationError naming the argument, never TypeError or
# AttributeError: a caller's ``except MessagingError`` must catch a bad setting, and a
# client must refuse one before it builds its connection pool.


def check_credential(value: object, field: str) -> str:
    """A non-blank string that can go on the wire (UTF-8; no lone surrogate)."""
    if not isinstance(value, str) or not value.strip() or not _encodable(value):
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_concurrency(value: object, field: str = "max_concurrency") -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_CONCURRENCY_LIMIT
    ):
        raise ValidationError(
            f"{field} must be an int from 1 to {MAX_CONCURRENCY_LIMIT}", field=field
        )
    return value


def check_retry(value: object) -> RetryPolicy:
    if value is None:
        return RetryPolicy()
    if not isinstance(value, RetryPolicy):
        raise ValidationError("retry must be a RetryPolicy", field="retry")
    return value


def check_timeout(value: object) -> httpx.Timeout:
    """Seconds or an ``httpx.Timeout``, each phase positive and finite (or ``None`` in a
    Timeout: that phase unbounded). NaN compares false to every bound, so it is named."""
    if isinstance(value, httpx.Timeout):
        phases = (value.connect, value.read, value.write, value.pool)
        if all(phase is None or _positive_seconds(phase) for phase in phases):
            return value
    elif value is None or _positive_seconds(value):
        return make_timeout(value)  # type: ignore[arg-type]
    raise ValidationError(
        "timeout must be a positive, finite number of seconds or an httpx.Timeout",
        field="timeout",
    )


def _positive_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def check_transport(value: object) -> httpx.AsyncBaseTransport | None:
    if value is not None and not isinstance(value, httpx.AsyncBaseTransport):
        raise ValidationError(
            "transport must be an httpx.AsyncBaseTransport instance (or None)", field="transport"
        )
    return value


def check_http_backend(value: object) -> str:
    if not isinstance(value, str) or value not in HTTP_BACKENDS:
        raise ValidationError(
            f"http_backend must be one of {', '.join(HTTP_BACKENDS)}", field="http_backend"
        )
    return value


def check_urls(value: object, field: str) -> tuple[str, ...]:
    """``check_base_urls``, after making sure it was given a list or tuple of strings."""
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str | bytes)
        or not all(isinstance(url, str) for url in value)
    ):
        raise ValidationError(f"{field} must be a non-empty list of URLs", field=field)
    return check_base_urls(value, field=field)


def default_calling_code(country: str | None) -> str | None:
    return None if country is None else calling_code(country)
