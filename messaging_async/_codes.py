"""A gateway's table of answer codes and the typed error each one becomes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ._secrets import Redactor
from .errors import GatewayError

if TYPE_CHECKING:
    from .models import Outcome

__all__ = ["Code", "CodeTable"]


@frozen
class Code:
    """What one code means. ``fatal``: every further send of the account fails the same way,
    so a bulk run stops; ``scoped``: fatal only for messages that share what failed (a
    WhatsApp template)."""

    error: type[GatewayError]
    fatal: bool
    meaning: str
    scoped: bool = False


class CodeTable:
    """One gateway's codes; undocumented ones become a plain, non-fatal ``GatewayError``."""

    def __init__(self, gateway: str, codes: Mapping[int, Code]):
        self.gateway = gateway
        self.codes = codes

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def is_scoped(self, error: GatewayError) -> bool:
        known = self.codes.get(error.code) if error.code is not None else None
        return known is not None and known.scoped

    def error_for(
        self,
        code: int | None,
        gateway_message: str | None = None,
        raw: Any = None,
        *,
        redact: Redactor,
    ) -> GatewayError:
        """The typed error for ``code``; the gateway's own text is added where it says more.

        ``redact`` is the request's: the gateway's text and ``raw`` go through it first, so an
        answer echoing the password, a message text or a template parameter cannot carry
        them into the error, the outcome reason that quotes it, or a log line.
        """
        known = self.codes.get(code) if code is not None else None
        message = (
            f"{self.gateway} answered {code}: {known.meaning if known else 'undocumented code'}"
        )
        quoted = redact(gateway_message) if gateway_message else gateway_message
        if quoted and quoted.strip() != str(code):
            message += f" ({quoted})"
        return (known.error if known else GatewayError)(
            message,
            code=code,
            gateway_message=quoted,
            fatal=known.fatal if known else False,
            raw=redact.scrub(raw),
        )

    def replayed(self, outcome: Outcome) -> GatewayError:
        """The typed error of a refusal the ledger recorded (a keyed single send asked
        again): the class its code maps to, as the first attempt raised, with the recorded
        reason (redacted when it was recorded) and the outcome; the raw answer is gone."""
        known = self.codes.get(outcome.code) if outcome.code is not None else None
        return (known.error if known else GatewayError)(
            outcome.reason or f"{self.gateway} answered {outcome.code}",
            code=outcome.code,
            fatal=known.fatal if known else False,
            outcome=outcome,
        )
