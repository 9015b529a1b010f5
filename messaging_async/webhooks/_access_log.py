"""Keeping callback URLs out of access logs: they carry the token, numbers and texts.

The gateways call back with ``GET``: the receiver's token, the recipient's number and,
for incoming SMS, the whole text travel in the query string, which an ASGI server's access
log writes out verbatim (uvicorn's ``uvicorn.access`` logger does, at INFO).
"""

from __future__ import annotations

import logging

__all__ = ["AccessLogFilter"]


class AccessLogFilter(logging.Filter):
    """Drops access-log records for paths under any of ``prefixes`` (where the receiver is
    mounted; none: every path, for a server that serves only the receiver).

    Add it to your server's access logger, e.g.
    ``logging.getLogger("uvicorn.access").addFilter(AccessLogFilter("/hooks"))``: other
    paths are still logged. A record is recognised by one of its arguments being a path
    under a prefix, which is how uvicorn (and most servers) pass the path.
    """

    def __init__(self, *prefixes: str):
        super().__init__()
        self.prefixes = tuple("/" + prefix.strip("/") for prefix in prefixes) or ("/",)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(arg, str) and self._hidden(arg) for arg in args)

    def _hidden(self, path: str) -> bool:
        for prefix in self.prefixes:
            if prefix == "/":
                if path.startswith("/"):
                    return True
            elif path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in ("", "/", "?"):
                return True
        return False
