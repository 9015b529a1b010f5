"""One HTTP POST and its answer, over httpx's transport or over aiohttp: the only place the
clients do network I/O. ``_transport`` builds failover and retry rules on top of it.

Both exchanges answer the one question the retry rules need about a failure: could the
request have reached the gateway? (``SendFailed.never_sent``). Neither follows redirects,
stores cookies or reads proxy settings from the environment.

``_httpx``: httpx's transports (ours, or the caller's); ``_direct``: our pool of httpcore's
connections for requests without a proxy; ``_native``: the asyncio network backend our
connections use on asyncio; ``_httpcore_logs``: httpcore's trace kept free of echoed
requests; ``_aiohttp``: the ``[fast]`` backend.
"""

from .._connections import shared_ssl_context
from ._aiohttp import AiohttpExchange
from ._base import DEFAULT_KEEPALIVE_EXPIRY, Exchange, Phases, Reply, SendFailed
from ._httpx import SHARD_SIZE, HttpxExchange, default_transport, shard_sizes

__all__ = [
    "DEFAULT_KEEPALIVE_EXPIRY",
    "SHARD_SIZE",
    "AiohttpExchange",
    "Exchange",
    "HttpxExchange",
    "Phases",
    "Reply",
    "SendFailed",
    "default_transport",
    "shard_sizes",
    "shared_ssl_context",
]
