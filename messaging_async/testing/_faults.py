"""Which requests the sandbox fails, and what a failure that answers looks like.

Kept apart from ``gateway.py`` so the gateway's state and the ways it misbehaves can be read
(and cleared, over the control API) on their own.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ._records import Fault, FaultRule, SimulatedAnswer

__all__ = ["CHAOS_FAULTS", "FaultBook", "fault_answer"]

_HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)
_HTML_503 = (
    "<html><body><h1>503 Service Unavailable</h1><p>Maintenance in progress.</p></body></html>"
)
# What chaos picks from: every fault a real network or gateway produces on its own.
CHAOS_FAULTS = (
    Fault.HANG,
    Fault.RESET,
    Fault.SERVER_ERROR,
    Fault.UNAVAILABLE,
    Fault.TRUNCATED,
    Fault.NOT_JSON,
    Fault.SLOW,
)
# Faults about the connection rather than one answer: looked up apart (``idle_timeout``), so
# a standing rule of this kind never hides the per-request faults injected after it.
_CONNECTION_FAULTS = (Fault.IDLE_CLOSE,)


class FaultBook:
    """The injected rules (first match wins, ``times`` counts down) and the chaos setting."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.applied: Counter[str] = Counter()
        self._chaos: tuple[random.Random, tuple[Fault, ...], float, float] | None = None

    def inject(self, rule: FaultRule) -> None:
        if rule.fault is Fault.CODE and rule.code is None:
            raise ValueError("Fault.CODE needs code=")
        if rule.times is not None and rule.times < 1:
            raise ValueError("times must be at least 1, or None for every request")
        if not math.isfinite(rule.delay) or rule.delay < 0:
            raise ValueError("delay must be a finite number of seconds, 0 or more")
        self.rules.append(rule)

    def chaos(
        self, faults: Iterable[Fault], *, rate: float, seed: int | None, delay: float
    ) -> None:
        chosen = tuple(faults)
        if Fault.CODE in chosen:
            raise ValueError("Fault.CODE needs a code: inject it instead")
        if any(fault in _CONNECTION_FAULTS for fault in chosen):
            raise ValueError("Fault.IDLE_CLOSE is about connections: inject it instead")
        rng = random.Random(seed)  # noqa: S311 - picks faults for tests, not secrets
        self._chaos = (rng, chosen, rate, delay) if rate > 0 and chosen else None

    def clear(self) -> None:
        self.rules.clear()
        self._chaos = None

    def take(self, path: str, host: str) -> FaultRule | None:
        """The fault for this request, if any (injected rules first, then chaos)."""
        rule = self._injected(path, host, per_request=True) or self._random_fault()
        if rule is not None:
            self.applied[rule.fault.label] += 1
        return rule

    def idle_timeout(self, path: str, host: str) -> float | None:
        """Seconds after which this request's connection is closed when idle, if a rule says."""
        rule = self._injected(path, host, per_request=False)
        if rule is None:
            return None
        self.applied[rule.fault.label] += 1
        return rule.delay

    def describe(self) -> list[dict[str, Any]]:
        """The standing rules, for ``GET /_sandbox/faults``."""
        return [
            {
                "fault": rule.fault.label,
                "endpoint": rule.endpoint,
                "host": rule.host,
                "times": rule.times,
                "delay": rule.delay,
                "code": rule.code,
            }
            for rule in self.rules
        ]

    def _injected(self, path: str, host: str, *, per_request: bool) -> FaultRule | None:
        for rule in self.rules:
            if (rule.fault not in _CONNECTION_FAULTS) is per_request and rule.matches(path, host):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                return rule
        return None

    def _random_fault(self) -> FaultRule | None:
        if self._chaos is None:
            return None
        rng, faults, rate, delay = self._chaos
        if rng.random() >= rate:
            return None
        return FaultRule(rng.choice(faults), delay=delay)


def fault_answer(rule: FaultRule, path: str) -> SimulatedAnswer:
    """What a fault that does not process the request answers."""
    if rule.fault is Fault.SERVER_ERROR:
        return SimulatedAnswer(502, _HTML_502, "text/html")
    if rule.fault is Fault.UNAVAILABLE:
        return SimulatedAnswer(503, _HTML_503, "text/html")
    if rule.fault is Fault.NOT_JSON:
        return SimulatedAnswer(200, "Service temporarily unavailable. Please try again later.")
    if rule.fault is Fault.THROTTLED:
        # Retry-After takes whole seconds; round up so a client never comes back too early.
        wait = str(math.ceil(rule.delay))
        return SimulatedAnswer(429, "Too Many Requests", headers=(("Retry-After", wait),))
    if path.endswith("isms_send_json.php") or path.endswith("isms_balance_json.php"):
        body = {"status": "error", "code": int(rule.code or 0), "message": f"{rule.code}"}
        return SimulatedAnswer(200, json.dumps(body), "application/json")
    if path.endswith("isms_send_waba.php"):
        return SimulatedAnswer(
            200, json.dumps({"statusCode": str(rule.code), "message": "sandbox fault"})
        )
    return SimulatedAnswer(200, str(rule.code))
