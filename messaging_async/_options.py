"""Client settings for production traffic, checked the same way by both clients: the
environment's credentials, connection capacity and its single-send lane, the rate limit.
"""

from __future__ import annotations

import os

from attrs import frozen

from ._connections import Network, check_network
from .errors import ValidationError
from .hooks import CompositeHooks, combine_hooks
from .rate import RateLimit

__all__ = [
    "DEFAULT_SINGLE_SEND_CAPACITY",
    "Traffic",
    "check_rate_limit",
    "connection_lanes",
    "from_environment",
    "one_base_url",
    "required_setting",
    "traffic_settings",
]

# Connections kept for single sends (an OTP in a request handler) whatever bulk calls are
# running on the same client: enough for a busy web service's concurrent OTPs at a
# gateway's usual latency, few enough to cost nothing when idle.
DEFAULT_SINGLE_SEND_CAPACITY = 8
MAX_CONNECTIONS_LIMIT = 1000


def from_environment(value: object, variable: str) -> object:
    """``value`` when given, else the environment variable (the CLI's names), else ``None``.

    An empty variable counts as unset, as a shell's ``VAR=`` usually means.
    """
    if value is not None:
        return value
    return os.environ.get(variable) or None


def check_rate_limit(value: object) -> RateLimit | None:
    if value is not None and not isinstance(value, RateLimit):
        raise ValidationError("rate_limit must be a RateLimit (or None)", field="rate_limit")
    return value


def _count(value: object, field: str, least: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not least <= value <= MAX_CONNECTIONS_LIMIT
    ):
        raise ValidationError(
            f"{field} must be an int from {least} to {MAX_CONNECTIONS_LIMIT}", field=field
        )
    return value


def connection_lanes(
    bulk_concurrency: int, single_send_capacity: object, max_connections: object
) -> tuple[int, int]:
    """The pool's size and the connections in it kept for single sends.

    ``max_connections`` bounds every request in flight; by default it is the bulk
    concurrency plus ``single_send_capacity``, so a full blast still leaves single sends
    their lane. Given explicitly, bulk requests get what the lane leaves.
    """
    single = _count(single_send_capacity, "single_send_capacity", 0)
    if max_connections is None:
        return bulk_concurrency + single, single
    total = _count(max_connections, "max_connections", 1)
    if single >= total:
        raise ValidationError(
            "single_send_capacity must leave bulk sends at least one of max_connections",
            field="single_send_capacity",
        )
    return total, single


@frozen
class Traffic:
    """A client's traffic settings, checked: its connection lanes, rate limit, hooks and
    network path."""

    max_connections: int
    single_send_capacity: int
    rate_limit: RateLimit | None
    hooks: CompositeHooks | None
    network: Network


def traffic_settings(
    *,
    bulk_concurrency: int,
    single_send_capacity: object,
    max_connections: object,
    rate_limit: object,
    hooks: object,
    proxy: object,
    verify: object,
    trust_env: object,
) -> Traffic:
    total, single = connection_lanes(bulk_concurrency, single_send_capacity, max_connections)
    return Traffic(
        max_connections=total,
        single_send_capacity=single,
        rate_limit=check_rate_limit(rate_limit),
        hooks=combine_hooks(hooks),  # type: ignore[arg-type]
        network=check_network(proxy, verify, trust_env),
    )


def required_setting(value: object, field: str, variable: str) -> object:
    """A setting that must come from the call or from the environment variable."""
    found = from_environment(value, variable)
    if found is None:
        raise ValidationError(f"{field} must be given, or set in ${variable}", field=field)
    return found


def one_base_url(base_url: object, urls: object, field: str, variable: str) -> tuple[object, str]:
    """``base_url=`` (or the environment's) as a one-URL list, unless ``field`` was given;
    with the argument name a bad value is reported under."""
    if base_url is not None and urls is not None:
        raise ValidationError(f"give base_url or {field}, not both", field="base_url")
    if urls is not None:
        return urls, field
    found = from_environment(base_url, variable)
    return (None, field) if found is None else ([found], "base_url")
