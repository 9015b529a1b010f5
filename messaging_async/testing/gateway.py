"""``FakeGateway``: both gateways' contracts, simulated, for tests, demos and other languages.

It is a second, independent reading of CONTRACT.md: it never imports the SDK's wire
modules, so a misreading on either side fails an end-to-end test instead of passing it.
Use it in process (``transport=fake.transport()``) or on a loopback socket
(``async with serve(fake) as url``, or ``messaging-async sandbox``).
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from decimal import Decimal
from functools import partial
from typing import Any

import anyio

from ..isms import IsmsClient
from ..retry import RetryPolicy
from ..smscommy import SmsComMyClient
from ..webhooks.events import DeliveryStatus
from . import _isms, _smscommy
from ._forms import read_form
from ._http import WebhookTarget, in_process_transport
from ._records import Fault, FaultRule, SentMessage, SimulatedAnswer

__all__ = ["SANDBOX_PASSWORD", "SANDBOX_USERNAME", "FakeGateway"]

# Placeholders the sandbox accepts by default; they open no real account anywhere.
SANDBOX_USERNAME = "sandbox"
SANDBOX_PASSWORD = "sandbox-password"  # noqa: S105 - a sandbox placeholder, not a credential
SANDBOX_APP_ID = "sandbox-app"
SANDBOX_APP_SECRET = "sandbox-app-secret"  # noqa: S105 - a sandbox placeholder
SANDBOX_WABA_NUMBER = "60111111111"
WINDOW_SECONDS = 24 * 3600.0

_ISMS_STATUS = {
    DeliveryStatus.DELIVERED: "DELIVRD",
    DeliveryStatus.FAILED: "UNDELIV",
    DeliveryStatus.EXPIRED: "EXPIRED",
    DeliveryStatus.REJECTED: "REJECTD",
    DeliveryStatus.QUEUED: "ENROUTE",
}
_SMSCOMMY_STATUS = {
    DeliveryStatus.DELIVERED: "6",
    DeliveryStatus.FAILED: "7",
    DeliveryStatus.EXPIRED: "8",
    DeliveryStatus.UNKNOWN: "9",
    DeliveryStatus.REJECTED: "10",
    DeliveryStatus.QUEUED: "11",
    DeliveryStatus.NOT_IN_SERVICE: "12",
    DeliveryStatus.OUT_OF_COVERAGE: "13",
}
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

# Endpoints whose body is JSON (POST only); the others take a form, or a GET query.
_JSON_ENDPOINTS: Mapping[str, Callable[[FakeGateway, bytes], SimulatedAnswer]] = {
    "isms_send_json.php": _isms.json_send,
    "isms_balance_json.php": _isms.balance,
    "isms_send_waba.php": _isms.waba_send,
}
_FormHandler = Callable[["FakeGateway", dict[str, str]], SimulatedAnswer]
_SMSCOMMY_SENDS = ("ISendSMS.aspx", "ISendSMSNoDR.aspx", "ISendSMSUnicode.aspx", "ISendSMS2D.aspx")


def _send_as(endpoint: str, fake: FakeGateway, form: dict[str, str]) -> SimulatedAnswer:
    return _smscommy.send(fake, endpoint, form)


Outcomes = Mapping[str, DeliveryStatus] | Callable[[SentMessage], DeliveryStatus] | None


class FakeGateway:
    """Both gateways in one ASGI app, with accounts, credits, records and fault injection.

    Accepted messages are in ``sent`` (``sent_to(number)`` filters). Credentials default to
    the ``SANDBOX_*`` placeholders; every endpoint checks them. ``webhook`` (a
    ``WebhookTarget``) receives delivery reports (``await deliver_reports()``) and inbound
    WhatsApp messages (``await receive_whatsapp(...)``).
    """

    def __init__(
        self,
        *,
        username: str = SANDBOX_USERNAME,
        password: str = SANDBOX_PASSWORD,
        app_id: str = SANDBOX_APP_ID,
        app_secret: str = SANDBOX_APP_SECRET,
        waba_number: str = SANDBOX_WABA_NUMBER,
        isms_credits: int | Decimal = 1_000_000,
        smscommy_credits: int | Decimal = 1_000_000,
        waba_credits: int | Decimal = 1_000_000,
        templates: Iterable[str] = ("otp", "order_shipped", "order_update"),
        customers: Iterable[str] = ("customer1",),
        transfer_path: str = "ITransferCredits.aspx",
        webhook: WebhookTarget | None = None,
        delivery_outcomes: Outcomes = None,
        clock: Callable[[], float] = time.time,
    ):
        self.username, self.password = username, password
        self.app_id, self.app_secret, self.waba_number = app_id, app_secret, waba_number
        self.isms_credits = Decimal(isms_credits)
        self.smscommy_credits = Decimal(smscommy_credits)
        self.smscommy_used = Decimal(0)
        self.waba_credits = Decimal(waba_credits)
        self.templates = set(templates)
        self.customers: dict[str, Decimal] = dict.fromkeys(customers, Decimal(0))
        self.transfer_path = transfer_path
        self.webhook = webhook
        self.delivery_outcomes = delivery_outcomes
        self.sent: list[SentMessage] = []
        self.requests = 0
        self._clock = clock
        self._faults: list[FaultRule] = []
        self._chaos: tuple[random.Random, tuple[Fault, ...], float, float] | None = None
        self.faults_applied: Counter[str] = Counter()
        # Every seqno each sms.com.my (mobile, message) arrived with, retries included.
        self.seqnos_by_message: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._seqnos: dict[str, float] = {}
        self._windows: dict[str, float] = {}
        self._unreported: list[SentMessage] = []
        self._next_id = 1_143_000_000
        self._form_endpoints: dict[
            str, Callable[[FakeGateway, dict[str, str]], SimulatedAnswer]
        ] = {
            "isms_send_all_id.php": _isms.classic_send,
            "creditsLeft.aspx": _smscommy.credits_left,
            transfer_path: _smscommy.transfer,
            **{name: partial(_send_as, name) for name in _SMSCOMMY_SENDS},
        }

    def __repr__(self) -> str:
        return f"FakeGateway(sent={len(self.sent)}, faults={len(self._faults)})"

    # ---------------------------------------------------------------- records and state
    def sent_to(self, number: str) -> list[SentMessage]:
        return [message for message in self.sent if message.to == number]

    def record(self, message: SentMessage) -> None:
        self.sent.append(message)
        if message.gateway == "isms" or message.endpoint in (
            "ISendSMS.aspx",
            "ISendSMSUnicode.aspx",
        ):
            self._unreported.append(message)
        if message.gateway == "smscommy":
            self.smscommy_used += message.credits

    def next_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def now(self) -> float:
        return self._clock()

    def seqno_seen(self, seqno: str) -> bool:
        seen = self._seqnos.get(seqno)
        return seen is not None and self.now() - seen < _smscommy.SEQNO_MEMORY

    def remember_seqno(self, seqno: str) -> None:
        self._seqnos[seqno] = self.now()

    def window_open(self, number: str) -> bool:
        """Whether ``number`` wrote to the WhatsApp number in the last 24 hours."""
        opened = self._windows.get(number)
        return opened is not None and self.now() - opened < WINDOW_SECONDS

    # ---------------------------------------------------------------- faults
    def inject(
        self,
        fault: Fault,
        *,
        endpoint: str | None = None,
        host: str | None = None,
        times: int | None = 1,
        delay: float = 0.5,
        code: int | str | None = None,
    ) -> None:
        """Make the next ``times`` matching requests (``None``: all) fail with ``fault``.

        ``endpoint`` matches the end of the path (``"isms_send_json.php"``), ``host`` the
        base URL's host, so a failover test can break one host only.
        """
        if fault is Fault.CODE and code is None:
            raise ValueError("Fault.CODE needs code=")
        self._faults.append(FaultRule(fault, endpoint, host, times, delay, code))

    def chaos(
        self,
        faults: Iterable[Fault] = CHAOS_FAULTS,
        *,
        rate: float = 0.2,
        seed: int | None = None,
        delay: float = 0.5,
    ) -> None:
        """Fail a random ``rate`` of requests with a random one of ``faults`` (reproducible
        with ``seed``); ``rate=0`` turns it off. Injected faults take precedence."""
        chosen = tuple(faults)
        if Fault.CODE in chosen:
            raise ValueError("Fault.CODE needs a code: inject it instead")
        rng = random.Random(seed)  # noqa: S311 - picks faults for tests, not secrets
        self._chaos = (rng, chosen, rate, delay) if rate > 0 and chosen else None

    def clear_faults(self) -> None:
        self._faults.clear()
        self._chaos = None

    def take_fault(self, path: str, host: str) -> FaultRule | None:
        rule = self._injected(path, host) or self._random_fault()
        if rule is not None:
            self.faults_applied[rule.fault.label] += 1
        return rule

    def _injected(self, path: str, host: str) -> FaultRule | None:
        for rule in self._faults:
            if rule.matches(path, host):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._faults.remove(rule)
                return rule
        return None

    def _random_fault(self) -> FaultRule | None:
        if self._chaos is None:
            return None
        rng, faults, rate, delay = self._chaos
        if rng.random() >= rate:
            return None
        return FaultRule(rng.choice(faults), delay=delay)

    def fault_answer(self, rule: FaultRule, path: str) -> SimulatedAnswer:
        """What a fault that does not process the request answers."""
        if rule.fault is Fault.SERVER_ERROR:
            return SimulatedAnswer(502, _HTML_502, "text/html")
        if rule.fault is Fault.UNAVAILABLE:
            return SimulatedAnswer(503, _HTML_503, "text/html")
        if rule.fault is Fault.NOT_JSON:
            return SimulatedAnswer(200, "Service temporarily unavailable. Please try again later.")
        if path.endswith("isms_send_json.php") or path.endswith("isms_balance_json.php"):
            body = {"status": "error", "code": int(rule.code or 0), "message": f"{rule.code}"}
            return SimulatedAnswer(200, json.dumps(body), "application/json")
        if path.endswith("isms_send_waba.php"):
            return SimulatedAnswer(
                200, json.dumps({"statusCode": str(rule.code), "message": "sandbox fault"})
            )
        return SimulatedAnswer(200, str(rule.code))

    # ---------------------------------------------------------------- requests
    def handle(
        self, method: str, path: str, query: str, body: bytes, content_type: str = ""
    ) -> SimulatedAnswer:
        """Answer one request as the contract says; pure apart from the sandbox's state.
        ``content_type`` tells a multipart form from a url-encoded one."""
        self.requests += 1
        endpoint = path.rsplit("/", 1)[-1]
        json_handler = _JSON_ENDPOINTS.get(endpoint)
        if json_handler is not None:
            if method != "POST":
                return SimulatedAnswer(405, "POST only")
            return json_handler(self, body)
        form_handler = self._form_endpoints.get(endpoint)
        if form_handler is None:
            return SimulatedAnswer(404, "<html><body>404 Not Found</body></html>", "text/html")
        return form_handler(self, read_form(endpoint, query, body, content_type))

    def isms_client(self, *, base_url: str | None = None, **overrides: Any) -> IsmsClient:
        """An ``IsmsClient`` (SMS and WhatsApp) with this sandbox's credentials and retries that
        do not sleep: to ``base_url`` (or the ``sms_base_urls`` given) where the sandbox is
        served, else in process."""
        settings: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "app_id": self.app_id,
            "app_secret": self.app_secret,
            "waba_number": self.waba_number,
            "retry": RetryPolicy.no_wait(),
        }
        if base_url is not None:
            settings.update(sms_base_urls=[base_url], waba_base_urls=[base_url])
        elif not {"sms_base_urls", "waba_base_urls", "transport"} & overrides.keys():
            settings["transport"] = self.transport()  # no URL given: in process
        return IsmsClient(**{**settings, **overrides})

    def smscommy_client(self, *, base_url: str | None = None, **overrides: Any) -> SmsComMyClient:
        """An ``SmsComMyClient`` for this sandbox, like ``isms_client``."""
        settings: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "retry": RetryPolicy.no_wait(),
            "base_url": f"{base_url or 'https://www.sms.com.my'}/websmsapi",
        }
        if base_url is None:
            settings["transport"] = self.transport()
        return SmsComMyClient(**{**settings, **overrides})

    def transport(self) -> Any:
        """An ``httpx.AsyncBaseTransport`` that serves this sandbox in process, faults included."""
        return in_process_transport(self)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """The ASGI app, for serving over a socket."""
        from ._asgi import serve_request

        await serve_request(self, scope, receive, send)

    # ---------------------------------------------------------------- callbacks
    def outcome_for(self, message: SentMessage) -> DeliveryStatus:
        outcomes = self.delivery_outcomes
        if outcomes is None:
            return DeliveryStatus.DELIVERED
        if callable(outcomes):
            return outcomes(message)
        return outcomes.get(message.to, DeliveryStatus.DELIVERED)

    async def deliver_reports(self, *, concurrency: int = 2) -> int:
        """Send a delivery report for every message not reported yet; returns how many.

        iSMS reports go as GET ``sms_id``/``dstno``/``status``; sms.com.my ones as GET
        ``MsgId``/``Sender``/``Status`` (C1 codes), both to ``webhook``. Two at a time is the
        fastest measured here: more concurrency makes httpx's pool slower (httpx #3215).
        """
        if self.webhook is None:
            raise RuntimeError(
                "FakeGateway(webhook=WebhookTarget(...)) is needed to deliver reports"
            )
        reports, self._unreported = self._unreported, []
        limiter = anyio.CapacityLimiter(concurrency)
        webhook = self.webhook

        async def deliver(message: SentMessage) -> None:
            async with limiter:
                await webhook.get(*self._report(message))

        async with webhook.session(), anyio.create_task_group() as tasks:
            for message in reports:
                tasks.start_soon(deliver, message)
        return len(reports)

    def _report(self, message: SentMessage) -> tuple[str, dict[str, str]]:
        status = self.outcome_for(message)
        if message.gateway == "isms":
            code = _ISMS_STATUS.get(status, "UNKNOWN")
            return "isms_delivery", {
                "sms_id": message.message_id,
                "dstno": message.to,
                "status": code,
            }
        code = _SMSCOMMY_STATUS[status]
        sender = message.sender or self.waba_number
        return "smscommy_delivery", {"MsgId": message.message_id, "Sender": sender, "Status": code}

    async def receive_whatsapp(
        self, from_number: str, text: str, *, message_type: str = "text"
    ) -> dict[str, Any]:
        """Simulate a user writing to the WhatsApp number: opens the 24-hour window and, with a
        ``webhook``, POSTs the message as iSMS does (a base64 ``response`` parameter)."""
        self._windows[from_number] = self.now()
        payload = {
            "from": from_number,
            "to": self.waba_number,
            "messageId": f"wamid.{self.next_id()}",
            "type": message_type,
            "text": {"body": text},
            "timestamp": str(int(self.now())),
        }
        if self.webhook is not None:
            encoded = base64.b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode()
            async with self.webhook.session():
                await self.webhook.post_form("isms_whatsapp", {"response": encoded})
        return payload
