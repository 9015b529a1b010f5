"""sms.com.my (HTTP Specification 1.84)."""

from .client import SMSCOMMY_BASE_URL, SmsComMyClient

__all__ = ["SMSCOMMY_BASE_URL", "SmsComMyClient"]
