"""messaging_async: an async SDK for the iSMS and sms.com.my messaging gateways.

Every public name is importable from here; everything else is private.
"""

from ._outcomes_seq import Outcomes
from ._stream import BulkStream
from ._version import __version__
from .errors import (
    AuthenticationError,
    BulkInterruptedError,
    ClientClosedError,
    CreditTransferError,
    DuplicateRequestError,
    GatewayError,
    InputFailedError,
    InsufficientCreditsError,
    InvalidMessageError,
    InvalidNumberError,
    InvalidRequestError,
    IpNotWhitelistedError,
    JobRunningError,
    LedgerError,
    MessagingError,
    OutcomeUnknownError,
    PlainHttpWarning,
    ReplyWindowClosedError,
    TemplateNotFoundError,
    TransportError,
    UnexpectedAnswerError,
    UnreachableError,
    ValidationError,
    WebhookError,
)
from .isms import ISMS_SMS_BASE_URLS, ISMS_WABA_BASE_URLS, IsmsClient
from .ledger import JobSummary, LedgerRecord, PostgresLedger, SqliteLedger
from .models import (
    Balance,
    BulkReport,
    Credits,
    CreditTransfer,
    Outcome,
    OutcomeStatus,
    Sms,
    WhatsAppFile,
    WhatsAppMessage,
    WhatsAppTemplate,
    WhatsAppText,
)
from .phone import mask_number, normalize_number
from .rate import RateLimit
from .retry import RetryPolicy
from .smscommy import SMSCOMMY_BASE_URL, SmsComMyClient
from .text import Encoding, choose_encoding, estimate_credits, to_ucs2_hex
from .webhooks import (
    DeliveryReport,
    DeliveryStatus,
    IncomingSms,
    WebhookReceiver,
    WhatsAppInbound,
)

__all__ = [
    "ISMS_SMS_BASE_URLS",
    "ISMS_WABA_BASE_URLS",
    "SMSCOMMY_BASE_URL",
    "AuthenticationError",
    "Balance",
    "BulkInterruptedError",
    "BulkReport",
    "BulkStream",
    "ClientClosedError",
    "CreditTransfer",
    "CreditTransferError",
    "Credits",
    "DeliveryReport",
    "DeliveryStatus",
    "DuplicateRequestError",
    "Encoding",
    "GatewayError",
    "IncomingSms",
    "InputFailedError",
    "InsufficientCreditsError",
    "InvalidMessageError",
    "InvalidNumberError",
    "InvalidRequestError",
    "IpNotWhitelistedError",
    "IsmsClient",
    "JobRunningError",
    "JobSummary",
    "LedgerError",
    "LedgerRecord",
    "MessagingError",
    "Outcome",
    "OutcomeStatus",
    "OutcomeUnknownError",
    "Outcomes",
    "PlainHttpWarning",
    "PostgresLedger",
    "RateLimit",
    "ReplyWindowClosedError",
    "RetryPolicy",
    "Sms",
    "SmsComMyClient",
    "SqliteLedger",
    "TemplateNotFoundError",
    "TransportError",
    "UnexpectedAnswerError",
    "UnreachableError",
    "ValidationError",
    "WebhookError",
    "WebhookReceiver",
    "WhatsAppFile",
    "WhatsAppInbound",
    "WhatsAppMessage",
    "WhatsAppTemplate",
    "WhatsAppText",
    "__version__",
    "choose_encoding",
    "estimate_credits",
    "mask_number",
    "normalize_number",
    "to_ucs2_hex",
]
