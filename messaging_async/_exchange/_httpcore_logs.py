"""httpcore's DEBUG trace, kept free of what a gateway may echo of our requests: the filter
every httpx exchange installs once on httpcore's loggers (split from ``_httpx``)."""

from __future__ import annotations

import functools
import logging
import re

__all__ = ["keep_answers_out_of_httpcore_logs"]


# httpcore's DEBUG trace logs each failed step with its exception's repr, and the status
# line and headers of every answer it reads (``receive_response_headers.complete
# return_value=(b'HTTP/1.1', 200, b'OK', [(b'X-Echo', b'…')])``). A gateway echoing our
# request in a header, in the reason phrase, or in a malformed header line would put the
# password, the message texts and the numbers in httpcore's log.
_HTTPCORE_LOGGERS = (
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_FAILED_STEP = re.compile(r"(\.failed exception=\w+)\(.*", re.S)
# HTTP/1.1 returns (version, status, reason, headers); HTTP/2 (status, headers).
_ANSWER_HEAD = re.compile(
    r"(receive_response_headers\.complete) return_value=\((?:b'[^']*', )?(\d+)\b.*", re.S
)


class _AnswersOutOfHttpcoreLogs(logging.Filter):
    """Keeps only the event name and what is ours in httpcore's trace records: a failed
    step's exception type (the exception itself still reaches us, and is quoted only
    redacted), an answer's status code without its reason phrase or headers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            if ".failed exception=" in record.msg:
                record.msg = _FAILED_STEP.sub(r"\1(…)", record.msg)
            elif record.msg.startswith("receive_response_headers.complete "):
                head = _ANSWER_HEAD.match(record.msg)
                record.msg = f"{head[1]} status={head[2]}" if head else record.msg.split()[0]
        return True


@functools.cache
def keep_answers_out_of_httpcore_logs() -> None:
    for name in _HTTPCORE_LOGGERS:
        logging.getLogger(name).addFilter(_AnswersOutOfHttpcoreLogs())
