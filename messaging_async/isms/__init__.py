"""iSMS (isms.com.my): the SMS JSON and classic APIs."""

from .client import ISMS_SMS_BASE_URLS, ISMS_WABA_BASE_URLS, IsmsClient

__all__ = ["ISMS_SMS_BASE_URLS", "ISMS_WABA_BASE_URLS", "IsmsClient"]
