"""Connection settings every client checks the same way: timeouts, base URLs, keep-alive,
HTTP backend, and the network path (proxy, certificate checks, environment).

Pure checks and lookups; the exchanges in ``_exchange`` build connections from them.
"""

from __future__ import annotations

import functools
import os
import ssl
import urllib.request
from collections.abc import Sequence
from typing import TypeGuard
from urllib.parse import urlsplit

import httpx
from attrs import field, frozen

from .errors import ValidationError

__all__ = [
    "DEFAULT_TIMEOUT",
    "HTTP_BACKENDS",
    "Network",
    "check_base_urls",
    "check_keepalive_expiry",
    "check_network",
    "make_timeout",
]

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
HTTP_BACKENDS = ("httpx", "aiohttp")
MAX_KEEPALIVE_EXPIRY = 3600.0
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def make_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Seconds (for every phase) or an ``httpx.Timeout``; ``None`` means the default, never
    "no timeout": a request without one can hang a blast forever."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValidationError("timeout must be a positive number of seconds or an httpx.Timeout")
    return httpx.Timeout(float(timeout), connect=min(5.0, float(timeout)))


def check_base_urls(urls: Sequence[str], *, field: str) -> tuple[str, ...]:
    """Validate base URLs (absolute http(s), a host, no credentials) and strip trailing ``/``."""
    if isinstance(urls, str) or not urls:
        raise ValidationError(f"{field} must be a non-empty sequence of URLs", field=field)
    checked = []
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(f"{field}: {url!r} is not an absolute http(s) URL", field=field)
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValidationError(
                f"{field}: base URLs carry no credentials, query or fragment", field=field
            )
        checked.append(url.rstrip("/"))
    return tuple(checked)


def check_keepalive_expiry(value: object) -> float:
    """Seconds an idle connection may wait for reuse: a number from 0 (a new connection per
    request) to an hour. Keep it under the gateway's own keep-alive timeout."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_KEEPALIVE_EXPIRY  # also refuses nan
    ):
        raise ValidationError(
            f"keepalive_expiry must be a number of seconds from 0 to {MAX_KEEPALIVE_EXPIRY:g}",
            field="keepalive_expiry",
        )
    return float(value)


@frozen
class Network:
    """The path requests take. ``proxy``: every request through it (its credentials, if
    any, stay out of reprs); ``ssl_context``: how the gateway's certificate is checked
    (``None``: not at all); ``trust_env``: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``
    choose a proxy per host when ``proxy`` is not given."""

    proxy: str | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | None = None
    trust_env: bool = False

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to ``url`` goes through, if any."""
        if self.proxy is not None or not self.trust_env:
            return self.proxy
        return _environment_proxy(urlsplit(url).scheme, urlsplit(url).hostname or "")


def _environment_proxy(scheme: str, host: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``host``, unless
    ``NO_PROXY`` lists it (a host or a domain suffix; ``*``: every host)."""
    proxies = urllib.request.getproxies_environment()
    for entry in proxies.get("no", "").split(","):
        entry = entry.strip().lower().lstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return proxies.get(scheme) or proxies.get("all")


def check_network(proxy: object, verify: object, trust_env: object) -> Network:
    """``proxy``: a proxy URL (http, https, socks5); ``verify``: ``True`` (system CAs),
    ``False`` (no check: tests only), a CA bundle path or an ``ssl.SSLContext``;
    ``trust_env``: read proxies and ``SSL_CERT_FILE``/``SSL_CERT_DIR`` from the environment."""
    if not isinstance(trust_env, bool):
        raise ValidationError("trust_env must be True or False", field="trust_env")
    if proxy is not None and not _proxy_url(proxy):
        raise ValidationError(
            f"proxy must be a URL with scheme {', '.join(_PROXY_SCHEMES)}", field="proxy"
        )
    return Network(proxy=proxy, ssl_context=_ssl_context(verify, trust_env), trust_env=trust_env)


def _proxy_url(value: object) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in _PROXY_SCHEMES and bool(parts.hostname)


def _ssl_context(verify: object, trust_env: bool) -> ssl.SSLContext | None:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        return None
    if verify is True:
        if trust_env and (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")):
            return httpx.create_ssl_context(trust_env=True)
        return shared_ssl_context()
    if isinstance(verify, str | os.PathLike):
        path = os.fspath(verify)
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        if os.path.isfile(path):
            return ssl.create_default_context(cafile=path)
        raise ValidationError(f"verify: no CA bundle at {path!r}", field="verify")
    raise ValidationError(
        "verify must be True, False, a CA bundle path or an ssl.SSLContext", field="verify"
    )


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One SSL context for every client: building one costs milliseconds and memory each."""
    return httpx.create_ssl_context()
