"""``FakeGateway``: both gateways' contracts, simulated, for tests, demos and other languages.

It is a second, independent reading of docs/contract.md: it never imports the SDK's wire
modules, so a misreading on either side fails an end-to-end test instead of passing it.
Use it in process (``transport=fake.transport()``) or on a loopback socket
(``async with serve(fake) as url``, or ``messaging-async sandbox``).
"""

from __future__ import annotations

import logging
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
from ._control import CallbackFailed
from ._faults import CHAOS_FAULTS, FaultBook, fault_answer
from ._forms import read_form
from ._http import WebhookTarget, in_process_transport
from ._records import Fault, FaultRule, SentMessage, SimulatedAnswer
from ._reports import Outcomes, ReportQueue, report_request, response_form, send_reports

__all__ = ["SANDBOX_PASSWORD", "SANDBOX_USERNAME", "FakeGateway"]

# Placeholders the sandbox accepts by default; they open no real account anywhere.
SANDBOX_USERNAME = "sandbox"
SANDBOX_PASSWORD = "sandbox-password"  # noqa: S105 - a sandbox placeholder, not a credential
SANDBOX_APP_ID = "sandbox-app"
SANDBOX_APP_SECRET = "sandbox-app-secret"  # noqa: S105 - a sandbox placeholder
SANDBOX_WABA_NUMBER = "60111111111"
WINDOW_SECONDS = 24 * 3600.0

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


_log = logging.getLogger("messaging_async.testing")


class FakeGateway:
    """Both gateways in one ASGI app, with accounts, credits, records and fault injection.

    Accepted messages are in ``sent`` (``sent_to(number)`` filters). Credentials default to
    the ``SANDBOX_*`` placeholders; every endpoint checks them. ``webhook`` (a
    ``WebhookTarget``) receives delivery reports and inbound WhatsApp messages
    (``await receive_whatsapp(...)``). Reports fall due ``report_delay`` seconds after the
    send, after ``queued_reports`` "queued" ones; ``await deliver_reports()`` sends all now,
    ``await report_when_due()`` runs a loop that sends each when it falls due.
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
        report_delay: float = 0.0,
        queued_reports: int = 0,
        clock: Callable[[], float] = time.time,
    ):
        self.username, self.password = username, password
        self.app_id, self.app_secret, self.waba_number = app_id, app_secret, waba_number
        self.transfer_path = transfer_path
        self.webhook = webhook
        self.delivery_outcomes = delivery_outcomes
        self._clock = clock
        self._initial = (
            Decimal(isms_credits),
            Decimal(smscommy_credits),
            Decimal(waba_credits),
            frozenset(templates),
            tuple(customers),
        )
        self._reports = ReportQueue(delay=report_delay, queued_reports=queued_reports)
        self._sending: anyio.Lock | None = None
        self._faults = FaultBook()
        self._next_id = 1_143_000_000
        self._form_endpoints: dict[str, _FormHandler] = {
            "isms_send_all_id.php": _isms.classic_send,
            "creditsLeft.aspx": _smscommy.credits_left,
            transfer_path: _smscommy.transfer,
            **{name: partial(_send_as, name) for name in _SMSCOMMY_SENDS},
        }
        self.reset()

    def reset(self) -> None:
        """Back to the state it started in: credits, templates and customers as constructed;
        nothing sent, no seqnos, windows, pending reports or faults. Message ids keep counting,
        so an id from before the reset never names a message after it."""
        isms, smscommy, waba, templates, customers = self._initial
        self.isms_credits, self.smscommy_credits, self.waba_credits = isms, smscommy, waba
        self.smscommy_used = Decimal(0)
        self.templates = set(templates)
        self.customers: dict[str, Decimal] = dict.fromkeys(customers, Decimal(0))
        self.sent: list[SentMessage] = []
        self.requests = 0
        # Every seqno each sms.com.my (mobile, message) arrived with, retries included.
        self.seqnos_by_message: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._seqnos: dict[str, float] = {}
        self._windows: dict[str, float] = {}
        self._reports.pending.clear()
        self._faults.clear()

    def __repr__(self) -> str:
        return f"FakeGateway(sent={len(self.sent)}, faults={len(self._faults.rules)})"

    # ---------------------------------------------------------------- records and state
    def sent_to(self, number: str) -> list[SentMessage]:
        return [message for message in self.sent if message.to == number]

    def record(self, message: SentMessage) -> None:
        self.sent.append(message)
        self._reports.add(message, self.outcome_for)
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
        base URL's host, so a failover test can break one host only. ``delay`` is the
        seconds of ``SLOW``, the ``Retry-After`` of ``THROTTLED`` and the idle time after
        which ``IDLE_CLOSE`` closes a connection.
        """
        self._faults.inject(FaultRule(fault, endpoint, host, times, delay, code))

    def add_fault_rule(self, rule: FaultRule) -> None:
        """``inject`` for a rule already built (the control API's road)."""
        self._faults.inject(rule)

    def describe_faults(self) -> list[dict[str, Any]]:
        return self._faults.describe()

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
        self._faults.chaos(faults, rate=rate, seed=seed, delay=delay)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults_applied(self) -> Counter[str]:
        """How many times each fault struck, by label."""
        return self._faults.applied

    def take_fault(self, path: str, host: str) -> FaultRule | None:
        return self._faults.take(path, host)

    def idle_timeout_for(self, path: str, host: str) -> float | None:
        """Seconds of idleness after which this request's connection is to be closed."""
        return self._faults.idle_timeout(path, host)

    def fault_answer(self, rule: FaultRule, path: str) -> SimulatedAnswer:
        """What a fault that does not process the request answers."""
        return fault_answer(rule, path)

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
        """Where ``message`` gets to: ``delivery_outcomes``' say, else delivered (SMS) or
        read (WhatsApp: receipts sent, delivered, read)."""
        outcomes = self.delivery_outcomes
        usual = DeliveryStatus.READ if message.gateway == "whatsapp" else DeliveryStatus.DELIVERED
        if outcomes is None:
            return usual
        if callable(outcomes):
            return outcomes(message)
        return outcomes.get(message.to, usual)

    @property
    def pending_reports(self) -> int:
        """How many delivery reports are owed and not sent yet."""
        return len(self._reports.pending)

    async def deliver_reports(self, *, concurrency: int = 2) -> int:
        """Send every report owed, due or not; returns how many were sent.

        iSMS reports go as GET ``sms_id``/``dstno``/``status``; sms.com.my ones as GET
        ``MsgId``/``Sender``/``Status`` (C1 codes); WhatsApp receipts (sent, delivered, read
        or failed) as POSTs of a base64 ``response`` holding a Meta-style ``statuses``
        entry (contract E9); all to ``webhook`` (docs/sandbox.md).
        Two at a time is the fastest measured here: more concurrency makes httpx's pool
        slower (httpx #3215). Reports whose callback failed stay owed (``CallbackFailed``).
        """
        return await self._send_reports(None, concurrency)

    async def report_when_due(self, *, poll: float = 0.05, concurrency: int = 2) -> None:
        """Run until cancelled, sending each report once it falls due (``report_delay``
        after its send), as a telco's arrive. A receiver that cannot be reached is tried
        again on the next round."""
        while True:
            try:
                await self._send_reports(self.now(), concurrency)
            except CallbackFailed as problem:
                _log.warning("delivery reports not delivered, will retry: %s", problem)
                await anyio.sleep(1.0)
            await anyio.sleep(poll)

    async def _send_reports(self, now: float | None, concurrency: int) -> int:
        if self.webhook is None:
            raise RuntimeError(
                "FakeGateway(webhook=WebhookTarget(...)) is needed to deliver reports"
            )
        # One sending round at a time: a "send now" during the background loop's round must
        # not let a message's final report overtake its "queued" one.
        self._sending = self._sending or anyio.Lock()
        async with self._sending:
            due = self._reports.take(now)
            if not due:
                return 0

            def describe(report: Any) -> tuple[str, dict[str, str]]:
                outcome = self.outcome_for(report.message)
                return report_request(report, outcome, self.waba_number)

            failed = await send_reports(self.webhook, due, describe, concurrency=concurrency)
            if failed:
                self._reports.put_back(failed)
        if failed:
            raise CallbackFailed(f"{len(failed)} of {len(due)} reports not delivered; still owed")
        return len(due)

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
            async with self.webhook.session():
                await self.webhook.post_form("isms_whatsapp", response_form(payload))
        return payload
