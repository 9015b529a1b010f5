"""A worker's gateway clients, from its own environment: credentials never travel through
the database or a task's arguments, so each machine holds only its own.

``ISMS_USERNAME`` / ``ISMS_PASSWORD`` (and ``ISMS_SENDER_ID``, ``ISMS_BASE_URL``);
``SMSCOMMY_USERNAME`` / ``SMSCOMMY_PASSWORD`` (and ``SMSCOMMY_SENDER``,
``SMSCOMMY_BASE_URL``) — the command line's variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import ValidationError
from ..isms import ISMS_SMS_BASE_URLS, IsmsClient
from ..ledger import Ledger
from ..smscommy import SMSCOMMY_BASE_URL, SmsComMyClient

__all__ = ["Client", "ClientFactory", "clients_from_environment"]

Client = IsmsClient | SmsComMyClient
ClientFactory = Callable[[str, Ledger], Client]
"""``(gateway, ledger) -> client``: the client a worker sends a gateway's slices with,
journalling into ``ledger``."""


def clients_from_environment(*, concurrency: int = 10) -> ClientFactory:
    """Clients made from this process's environment, ``concurrency`` requests in flight."""

    def make(gateway: str, ledger: Ledger) -> Client:
        if gateway == "smscommy":
            username, password = _credentials("SMSCOMMY", "sms.com.my")
            return SmsComMyClient(
                username=username,
                password=password,
                sender=os.environ.get("SMSCOMMY_SENDER") or None,
                base_url=os.environ.get("SMSCOMMY_BASE_URL") or SMSCOMMY_BASE_URL,
                max_concurrency=concurrency,
                ledger=ledger,
            )
        username, password = _credentials("ISMS", "iSMS")
        base_url = os.environ.get("ISMS_BASE_URL")
        return IsmsClient(
            username=username,
            password=password,
            sender_id=os.environ.get("ISMS_SENDER_ID") or None,
            sms_base_urls=[base_url] if base_url else ISMS_SMS_BASE_URLS,
            max_concurrency=concurrency,
            ledger=ledger,
        )

    return make


def _credentials(prefix: str, gateway: str) -> tuple[str, str]:
    username = os.environ.get(f"{prefix}_USERNAME")
    password = os.environ.get(f"{prefix}_PASSWORD")
    if not username or not password:
        raise ValidationError(
            f"this worker has no {gateway} credentials: set {prefix}_USERNAME and "
            f"{prefix}_PASSWORD in its environment",
            field="credentials",
        )
    return username, password
