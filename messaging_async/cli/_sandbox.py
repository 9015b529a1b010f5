"""``messaging-async sandbox``: serve the sandbox for code in any language, and drive a running
one from a shell through its control API (``sandbox sent``, ``sandbox fault`` …).

Serving prints its base URL on the first line (``--port 0`` picks a free port, so a test
reads the URL from there) and every placeholder a client needs after it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

import anyio
import httpx

__all__ = ["add_sandbox_command"]

OK, ERROR = 0, 2
DEFAULT_URL = "http://127.0.0.1:8080"
_URL_HELP = "the running sandbox (default: $SANDBOX_URL or " + DEFAULT_URL + ")"


def add_sandbox_command(commands: Any) -> None:
    """Wire ``sandbox`` (serve) and its control subcommands into the CLI's parser."""
    from ..testing._records import Fault
    from ..testing._reports import OUTCOME_CHOICES

    sandbox: argparse.ArgumentParser = commands.add_parser(
        "sandbox", help="serve the sandbox of both gateways on loopback, or drive a running one"
    )
    sandbox.set_defaults(run=_serve, is_async=True)
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080, help="0: any free port")
    for gateway in ("isms", "smscommy", "waba"):
        sandbox.add_argument(f"--{gateway}-credits", type=_credits, default=Decimal(1_000_000))
    sandbox.add_argument(
        "--template", action="append", help="an approved template code (repeat; replaces defaults)"
    )
    sandbox.add_argument("--webhook", help="base URL of your receiver (loopback only)")
    sandbox.add_argument("--webhook-token", help="the token your receiver checks")
    sandbox.add_argument(
        "--report-delay", type=_seconds, default=0.0, help="seconds from a send to its report"
    )
    sandbox.add_argument(
        "--queued-reports", type=int, default=0, help='"queued" reports before the final one'
    )
    sandbox.add_argument("--delivery-outcome", choices=sorted(OUTCOME_CHOICES), default="delivered")
    actions = sandbox.add_subparsers(metavar="[ACTION]", title="drive a running sandbox")
    sent = _action(actions, "sent", "what the sandbox accepted, as JSON")
    sent.add_argument("--to", help="only messages to this number")
    fault = _action(actions, "fault", "make the next requests fail (see docs/testing.md)")
    fault.add_argument("fault", choices=[f.label for f in Fault])
    fault.add_argument("--endpoint", help="only paths ending so, e.g. isms_send_json.php")
    fault.add_argument("--host", dest="fault_host", help="only this host")
    fault.add_argument("--times", type=_times, default=1, help='how many requests, or "all"')
    fault.add_argument("--delay", type=_seconds, help="slow / Retry-After / idle seconds")
    fault.add_argument("--code", help="the gateway code of the 'code' fault")
    _action(actions, "clear-faults", "remove every injected fault")
    inbound = _action(actions, "inbound", "a WhatsApp user writes in (opens the 24-hour window)")
    inbound.add_argument("sender", metavar="FROM")
    inbound.add_argument("text")
    _action(actions, "reports", "send every pending delivery report now")
    _action(actions, "reset", "back to the starting state")


def _action(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
    parser.add_argument("--url", default=os.environ.get("SANDBOX_URL", DEFAULT_URL), help=_URL_HELP)
    parser.set_defaults(run=_control, is_async=False, action=name)
    return parser


def _credits(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number of credits: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"not a number of credits: {value!r}")
    return amount


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}")
    return seconds


def _times(value: str) -> int | None:
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError('--times takes a count of 1 or more, or "all"')
    return int(value)


# ---------------------------------------------------------------------------- serving
async def _serve(args: argparse.Namespace) -> int:
    from ..testing import FakeGateway, WebhookTarget, serve
    from ..testing._reports import OUTCOME_CHOICES

    if (args.webhook is None) != (args.webhook_token is None):
        return _fail("--webhook and --webhook-token go together")
    if args.host in ("127.0.0.1", "::1", "localhost") and not _port_free(args.host, args.port):
        return _fail(f"the sandbox cannot listen on {args.host}:{args.port}: it is in use")
    try:
        webhook = WebhookTarget(args.webhook, token=args.webhook_token) if args.webhook else None
        settings: dict[str, Any] = {"templates": args.template} if args.template else {}
        fake = FakeGateway(
            isms_credits=args.isms_credits,
            smscommy_credits=args.smscommy_credits,
            waba_credits=args.waba_credits,
            webhook=webhook,
            delivery_outcomes=OUTCOME_CHOICES[args.delivery_outcome],
            report_delay=args.report_delay,
            queued_reports=args.queued_reports,
            **settings,
        )
        async with serve(fake, host=args.host, port=args.port) as url:
            _print_placeholders(fake, url, args)
            await _until_stopped(fake)
    except (ValueError, RuntimeError, OSError) as problem:
        return _fail(str(problem))
    return OK


def _port_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound: asked first, because uvicorn answers a busy port by
    exiting the process with a traceback from a task we cannot catch."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


async def _until_stopped(fake: Any) -> None:
    """Serve (and send reports as they fall due) until Ctrl-C or SIGTERM: a clean stop."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tasks:
            if fake.webhook is not None:
                tasks.start_soon(fake.report_when_due)
            async for _signal in signals:
                tasks.cancel_scope.cancel()
                break


def _print_placeholders(fake: Any, url: str, args: argparse.Namespace) -> None:
    """Everything a client in another language needs, all placeholders that open nothing."""
    lines = [
        f"sandbox of iSMS and sms.com.my on {url} (Ctrl-C stops it)",
        f"  iSMS base URL (SMS and WhatsApp): {url}",
        f"  sms.com.my base URL:              {url}/websmsapi",
        f"  control API:                      {url}/_sandbox/",
        f"  SMS username / password (both gateways): {fake.username} / {fake.password}",
        f"  WhatsApp AppId / AppSecret: {fake.app_id} / {fake.app_secret}",
        f"  WhatsApp From (WABA number): {fake.waba_number}",
        f"  WhatsApp templates: {', '.join(sorted(fake.templates))}",
        f"  credits: iSMS {fake.isms_credits}, sms.com.my {fake.smscommy_credits}, "
        f"WhatsApp {fake.waba_credits}",
    ]
    if args.webhook:
        lines.append(
            f"  webhook: {args.webhook} (reports {args.report_delay:g} s after a send, "
            f"{args.queued_reports} queued first, outcome {args.delivery_outcome})"
        )
    else:
        lines.append("  webhook: none (--webhook URL --webhook-token T to receive callbacks)")
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------- control
def _control(args: argparse.Namespace) -> int:
    """One control API call; prints the JSON answer."""
    base = f"{args.url.rstrip('/')}/_sandbox"
    method, path, params, body = _request_for(args)
    try:
        with httpx.Client(timeout=30.0) as http:
            answer = http.request(method, f"{base}/{path}", params=params, json=body)
    except httpx.HTTPError as problem:
        return _fail(f"no sandbox answered at {args.url} ({type(problem).__name__})")
    try:
        shown = json.dumps(answer.json(), ensure_ascii=False, indent=2)
    except ValueError:
        return _fail(f"{args.url} is not a sandbox (HTTP {answer.status_code})")
    print(shown, file=sys.stdout if answer.is_success else sys.stderr)
    return OK if answer.is_success else ERROR


def _request_for(args: argparse.Namespace) -> tuple[str, str, dict[str, str], Any]:
    if args.action == "sent":
        return "GET", "sent", ({"to": args.to} if args.to else {}), None
    if args.action == "fault":
        fields = {
            "fault": args.fault,
            "endpoint": args.endpoint,
            "host": args.fault_host,
            "times": args.times,
            "delay": args.delay,
            "code": args.code,
        }
        body = {name: value for name, value in fields.items() if value is not None}
        body["times"] = args.times  # None ("all") is meaningful
        return "POST", "faults", {}, body
    if args.action == "clear-faults":
        return "DELETE", "faults", {}, None
    if args.action == "inbound":
        return "POST", "whatsapp/inbound", {}, {"from": args.sender, "text": args.text}
    return "POST", args.action, {}, None  # reports, reset


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return ERROR
