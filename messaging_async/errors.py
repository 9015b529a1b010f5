"""The exceptions the SDK raises, all under one root.

::

    MessagingError
    ├── ValidationError            bad input, raised before any network call
    ├── BulkInterruptedError       a bulk run ended before its input did (.report: what was read)
    │   ├── InputFailedError           the caller's input raised (it is the ``__cause__``)
    │   └── ClientClosedError          the client was closed (``aclose()``) during the run
    ├── WebhookError               a callback that is malformed or too large (.too_large)
    ├── LedgerError                the ledger cannot do what was asked (newer schema, lost job)
    │   └── JobRunningError            another live run holds the job
    ├── GatewayError               the gateway answered, with an error code
    │   ├── AuthenticationError        wrong username / password (iSMS -1001)
    │   ├── IpNotWhitelistedError      the calling server's IP is not allowed (iSMS -1003)
    │   ├── InsufficientCreditsError   the account ran out of credits (iSMS -1004)
    │   ├── InvalidNumberError         a destination number was refused (iSMS -1008)
    │   ├── InvalidMessageError        the text, its length or the sender ID was refused
    │   ├── ReplyWindowClosedError     WhatsApp free text/file outside the 24-hour window (45010)
    │   ├── TemplateNotFoundError      WhatsApp template code unknown to the gateway (60006)
    │   ├── InvalidRequestError        the request itself was malformed (a bug on our side)
    │   ├── DuplicateRequestError      sms.com.my saw this seqno in the last 24 hours (1718)
    │   ├── CreditTransferError        sms.com.my refused a credit transfer (1708, 1709)
    │   └── UnexpectedAnswerError      an answer the gateway's contract does not describe
    └── TransportError             no usable answer came back
        ├── UnreachableError           the request never reached the gateway: safe to resend
        └── OutcomeUnknownError        it may have reached the gateway: resending may duplicate

``PlainHttpWarning`` (a ``UserWarning``) flags a URL that would carry credentials or a
file link over plain http.

The split under ``TransportError`` is the one that matters for money and for users'
phones: an ``UnreachableError`` means nothing was sent, an ``OutcomeUnknownError`` means
the gateway may have sent it and we cannot tell. Exception messages never contain a
password, an app secret or a message text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import BulkReport, Outcome

__all__ = [
    "AuthenticationError",
    "BulkInterruptedError",
    "ClientClosedError",
    "CreditTransferError",
    "DuplicateRequestError",
    "GatewayError",
    "InputFailedError",
    "InsufficientCreditsError",
    "InvalidMessageError",
    "InvalidNumberError",
    "InvalidRequestError",
    "IpNotWhitelistedError",
    "JobRunningError",
    "LedgerError",
    "MessagingError",
    "OutcomeUnknownError",
    "PlainHttpWarning",
    "ReplyWindowClosedError",
    "TemplateNotFoundError",
    "TransportError",
    "UnexpectedAnswerError",
    "UnreachableError",
    "ValidationError",
    "WebhookError",
]


class MessagingError(Exception):
    """Root of every exception this SDK raises on purpose."""


class PlainHttpWarning(UserWarning):
    """A URL that carries credentials, or a file link for recipients, uses plain http."""


class ValidationError(MessagingError, ValueError):
    """Input the gateway would refuse or garble; raised before anything is sent.

    ``field`` names the offending argument or message field, ``index`` the position of
    the message in a bulk input (``None`` for a single send).
    """

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None):
        super().__init__(message)
        self.field = field
        self.index = index


class BulkInterruptedError(MessagingError):
    """A bulk call ended before reading all its input; every item it did read has its one
    outcome, on ``on_outcome`` and here.

    ``report`` is the ``BulkReport`` of the items read (``send_*`` bulk methods). A
    ``stream_*`` method yields each of those outcomes before raising, so there ``report``
    is ``None``: the stream already gave them.
    """

    def __init__(self, message: str, *, report: BulkReport | None = None):
        super().__init__(message)
        self.report = report


class InputFailedError(BulkInterruptedError):
    """The caller's own input (a CSV reader, an async generator) raised mid-run. Its
    exception is ``__cause__``; requests already out were finished, items read but not yet
    sent are ``not_sent``."""


class ClientClosedError(BulkInterruptedError):
    """The client was closed (``aclose()``, perhaps from another task) while this bulk call
    ran: nothing more was sent; what had not left is ``not_sent``, and what was out got its
    answer read (``unknown`` only if none came)."""


class WebhookError(MessagingError, ValueError):
    """A gateway callback that cannot be parsed; the only exception a webhook parser raises.

    ``too_large`` is true when the body passed the size limit (a receiver answers 413, not
    400). The message never quotes the payload: it may hold an OTP.
    """

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


class LedgerError(MessagingError):
    """The ledger refused: a schema newer than this SDK, a job this run no longer owns…"""


class JobRunningError(LedgerError):
    """Another run that is still alive holds the job; two runs would send twice.

    ``owner`` says who holds it (host, pid); a run that died is detected at once on the same
    host, and elsewhere once its lease has run out.
    """

    def __init__(self, message: str, *, job: str, owner: str):
        super().__init__(message)
        self.job = job
        self.owner = owner


class GatewayError(MessagingError):
    """The gateway answered and refused: ``code`` is its code, ``gateway_message`` its text.

    ``fatal`` is true for answers that make every further send of the same account fail
    (authentication, credits): a bulk run stops at the first one. ``outcome`` is the
    per-recipient result on the single-send paths, where one exists.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        gateway_message: str | None = None,
        fatal: bool = False,
        raw: Any = None,
        outcome: Outcome | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.gateway_message = gateway_message
        self.fatal = fatal
        self.raw = raw
        self.outcome = outcome


class AuthenticationError(GatewayError):
    """Wrong username or password: every request of this client will fail the same way."""


class IpNotWhitelistedError(GatewayError):
    """The gateway refuses requests from this server's IP address; whitelist it in the portal."""


class InsufficientCreditsError(GatewayError):
    """The account has no credits left for this message; top up and resend what is ``not_sent``."""


class InvalidNumberError(GatewayError):
    """The gateway refused the destination number."""


class InvalidMessageError(GatewayError):
    """The gateway refused the message: its text, its length, or the sender ID."""


class ReplyWindowClosedError(GatewayError):
    """WhatsApp free text and files may only answer a user who wrote within the last 24 hours;
    outside that window, send an approved template instead."""


class TemplateNotFoundError(GatewayError):
    """The WhatsApp template code does not exist (or is not approved) on this account."""


class DuplicateRequestError(GatewayError):
    """sms.com.my already has a request with this ``seqno`` from the last 24 hours (1718).

    Only raised when the duplicate is neither one of this SDK's own retries nor a seqno the
    caller gave: an answer 1718 to a retry means the first attempt was accepted, and one to
    the caller's seqno means the gateway already has that message (a resend of an
    ``unknown`` one); both are reported ``accepted``. A credit transfer answered 1718 on
    its first attempt still raises it.
    """


class CreditTransferError(GatewayError):
    """sms.com.my refused a credit transfer: unknown customer account (1708) or an invalid
    amount (1709)."""


class InvalidRequestError(GatewayError):
    """The gateway says the request was malformed; this is a bug in the SDK, please report it."""


class UnexpectedAnswerError(GatewayError):
    """The gateway answered with something its contract does not describe (the start of the
    body is in the message, credentials removed)."""


class TransportError(MessagingError):
    """No usable answer came back from any of the gateway's base URLs.

    ``attempts`` holds one short line per HTTP attempt (host and what went wrong), so a
    failure across several hosts can be read without turning logging on.
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: tuple[str, ...] = (),
        outcome: Outcome | None = None,
    ):
        super().__init__(message)
        self.attempts = attempts
        self.outcome = outcome


class UnreachableError(TransportError):
    """The request never reached the gateway (connection refused, DNS, TLS…): safe to resend."""


class OutcomeUnknownError(TransportError):
    """The request may have reached the gateway but no usable answer came back.

    Resending may deliver the message twice; do it only where a duplicate is acceptable
    or the gateway de-duplicates (sms.com.my ``seqno``).
    """
