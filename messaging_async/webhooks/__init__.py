"""Everything the gateways call back with: pure parsers, typed events, an ASGI receiver."""

from ..errors import WebhookError
from ._access_log import AccessLogFilter
from ._dedupe import Claim
from ._parsers import (
    DEFAULT_MAX_BYTES,
    parse_isms_delivery,
    parse_smscommy_delivery,
    parse_smscommy_incoming,
)
from ._whatsapp import parse_isms_whatsapp, parse_isms_whatsapp_callback
from .events import (
    DeliveryReport,
    DeliveryStatus,
    IncomingSms,
    WhatsAppCallback,
    WhatsAppInbound,
)
from .receiver import Deduplicator, MemoryDeduplicator, WebhookReceiver

__all__ = [
    "DEFAULT_MAX_BYTES",
    "AccessLogFilter",
    "Claim",
    "Deduplicator",
    "DeliveryReport",
    "DeliveryStatus",
    "IncomingSms",
    "MemoryDeduplicator",
    "WebhookError",
    "WebhookReceiver",
    "WhatsAppCallback",
    "WhatsAppInbound",
    "parse_isms_delivery",
    "parse_isms_whatsapp",
    "parse_isms_whatsapp_callback",
    "parse_smscommy_delivery",
    "parse_smscommy_incoming",
]
