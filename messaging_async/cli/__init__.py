"""``messaging-async``: send, blast, check balances, run the sandbox and the demo.

Credentials come from environment variables: ``ISMS_USERNAME``, ``ISMS_PASSWORD``,
``ISMS_APP_ID``, ``ISMS_APP_SECRET``, ``ISMS_WABA_NUMBER``, ``SMSCOMMY_USERNAME``,
``SMSCOMMY_PASSWORD``; a password also from ``--password-file`` or, on a terminal, a
prompt. ``--password`` works but warns: other users see it in the process list. They
are never printed.

Exit codes: 0 success; 1 partial failure (some recipients not accepted); 2 error (bad
arguments or configuration, an unreadable file, a refused single send, nothing
accepted); 130 interrupted (Ctrl-C, SIGTERM); 141 the output's reader left early (``| head``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ..errors import MessagingError
from ..isms import ISMS_SMS_BASE_URLS, ISMS_WABA_BASE_URLS, IsmsClient
from ..smscommy import SMSCOMMY_BASE_URL, SmsComMyClient
from ..webhooks import WebhookError
from ..webhooks._whatsapp import decode_response
from ._blast import INTERRUPTED, add_blast_arguments, blast_command
from ._report import add_report_command
from ._sandbox import add_sandbox_command
from ._wa_blast import add_whatsapp_blast_arguments, whatsapp_blast_command
from ._webhook_serve import add_webhook_serve_command
from ._workers import add_jobs_commands

__all__ = ["main"]

OK, PARTIAL, ERROR = 0, 1, 2
BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report a reader that left early


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = anyio.run(args.run, args) if args.is_async else args.run(args)
    except MessagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:  # before a blast watches for it, or outside one
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (``report NAME | head``): stop quietly
        # Python flushes stdout again at exit: point it at /dev/null, or that flush fails too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="messaging-async", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    sms = commands.add_parser("sms", help="send SMS").add_subparsers(
        required=True, metavar="ACTION"
    )
    send = _command(sms, "send", _sms_send, "send one SMS")
    send.add_argument("to")
    send.add_argument("text")
    blast = _command(sms, "blast", _sms_blast, "send a personalised SMS to every row of a CSV file")
    add_blast_arguments(blast)
    whatsapp = commands.add_parser("whatsapp", help="send WhatsApp messages (iSMS)")
    kinds = whatsapp.add_subparsers(required=True, metavar="KIND")
    template = _command(kinds, "template", _wa_template, "an approved template", gateway=False)
    template.add_argument("to")
    template.add_argument("template_code")
    template.add_argument("--language", default="en")
    template.add_argument("--param", action="append", default=[], help="repeat for param1, param2…")
    text = _command(kinds, "text", _wa_text, "free text (24-hour window)", gateway=False)
    text.add_argument("to")
    text.add_argument("text")
    file = _command(kinds, "file", _wa_file, "a file by public URL (24-hour window)", gateway=False)
    file.add_argument("to")
    file.add_argument("url")
    file.add_argument("file_name")
    wa_blast = _command(
        kinds,
        "blast",
        _wa_blast,
        "an approved template to every row of a CSV file",
        gateway=False,
    )
    add_whatsapp_blast_arguments(wa_blast)
    _command(commands, "balance", _balance, "iSMS credit balance", gateway=False)
    _command(commands, "credits", _credits, "sms.com.my credits used and left", gateway=False)
    add_sandbox_command(commands)
    add_jobs_commands(commands)
    webhook = commands.add_parser("webhook", help="webhook tools").add_subparsers(
        required=True, metavar="ACTION"
    )
    decode = webhook.add_parser("decode", help="decode an iSMS WhatsApp 'response' value")
    decode.add_argument("value")
    decode.set_defaults(run=_webhook_decode, is_async=False)
    add_webhook_serve_command(webhook)
    add_report_command(commands)
    demo = commands.add_parser(
        "demo", help="a bulk blast and webhook round trip against the sandbox"
    )
    demo.add_argument("--recipients", type=int, default=10_000)
    demo.set_defaults(run=_demo, is_async=True)
    return parser


def _command(
    group: Any, name: str, run: Any, help_text: str, *, gateway: bool = True
) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    command.set_defaults(run=run, is_async=True)
    if gateway:
        command.add_argument("--gateway", choices=("isms", "smscommy"), default="isms")
    command.add_argument("--username", help="default: $ISMS_USERNAME / $SMSCOMMY_USERNAME")
    command.add_argument(
        "--password",
        help="visible to other users in the process list: prefer $ISMS_PASSWORD / "
        "$SMSCOMMY_PASSWORD, --password-file or the prompt",
    )
    command.add_argument(
        "--password-file", type=Path, help="a file whose first line is the password"
    )
    command.add_argument("--sender", help="sender ID")
    command.add_argument("--base-url", help="a gateway base URL, e.g. the sandbox's")
    command.add_argument("--default-country", help="turn local 01… numbers into international ones")
    return command


def _setting(args: argparse.Namespace, flag: str, variable: str) -> str | None:
    value = getattr(args, flag, None)
    return value if value else os.environ.get(variable)


def _password(args: argparse.Namespace, variable: str, gateway: str) -> str | None:
    """``--password-file``, else ``--password`` (with a warning), else ``$variable``, else a
    prompt when a person is at the terminal."""
    path: Path | None = getattr(args, "password_file", None)
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        except (OSError, UnicodeDecodeError) as error:
            raise SystemExit(_fail(f"cannot read --password-file {path}: {error}")) from None
    if getattr(args, "password", None):
        print(
            "warning: --password is visible to other users in the process list; use "
            f"${variable}, --password-file or the prompt",
            file=sys.stderr,
        )
        return str(args.password)
    if os.environ.get(variable):
        return os.environ[variable]
    if sys.stdin.isatty():
        return getpass.getpass(f"{gateway} password: ") or None
    return None


def _isms(args: argparse.Namespace) -> IsmsClient:
    username = _setting(args, "username", "ISMS_USERNAME")
    password = _password(args, "ISMS_PASSWORD", "iSMS") if username else None
    if not username or not password:
        raise SystemExit(_fail("iSMS needs --username/--password or ISMS_USERNAME/ISMS_PASSWORD"))
    base_url = _setting(args, "base_url", "ISMS_BASE_URL")
    return IsmsClient(
        username=username,
        password=password,
        sender_id=args.sender,
        app_id=os.environ.get("ISMS_APP_ID"),
        app_secret=os.environ.get("ISMS_APP_SECRET"),
        waba_number=os.environ.get("ISMS_WABA_NUMBER"),
        sms_base_urls=[base_url] if base_url else ISMS_SMS_BASE_URLS,
        waba_base_urls=[base_url] if base_url else ISMS_WABA_BASE_URLS,
        default_country=args.default_country,
        # a blast's --concurrency: requests at a time for what it sends (SMS or WhatsApp)
        max_concurrency=getattr(args, "concurrency", 10),
        max_whatsapp_concurrency=getattr(args, "concurrency", 32),
        ledger=getattr(args, "ledger_store", None),
    )


def _smscommy(args: argparse.Namespace) -> SmsComMyClient:
    username = _setting(args, "username", "SMSCOMMY_USERNAME")
    password = _password(args, "SMSCOMMY_PASSWORD", "sms.com.my") if username else None
    if not username or not password:
        raise SystemExit(
            _fail("sms.com.my needs --username/--password or SMSCOMMY_USERNAME/SMSCOMMY_PASSWORD")
        )
    return SmsComMyClient(
        username=username,
        password=password,
        sender=args.sender,
        base_url=_setting(args, "base_url", "SMSCOMMY_BASE_URL") or SMSCOMMY_BASE_URL,
        default_country=args.default_country,
        max_concurrency=getattr(args, "concurrency", 10),
        ledger=getattr(args, "ledger_store", None),
    )


def _client(args: argparse.Namespace) -> IsmsClient | SmsComMyClient:
    return _smscommy(args) if getattr(args, "gateway", "isms") == "smscommy" else _isms(args)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return ERROR


async def _sms_send(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        outcome = await client.send_sms(args.to, args.text)
    print(f"accepted: {outcome.to} message id {outcome.message_id or '(none given)'}")
    return OK


async def _sms_blast(args: argparse.Namespace) -> int:
    return await blast_command(args, _client)


async def _wa_blast(args: argparse.Namespace) -> int:
    return await whatsapp_blast_command(args, _isms)


async def _wa_template(args: argparse.Namespace) -> int:
    async with _isms(args) as isms:
        outcome = await isms.send_whatsapp_template(
            args.to, args.template_code, language=args.language, params=args.param
        )
    print(f"accepted: message id {outcome.message_id}, request id {outcome.request_id}")
    return OK


async def _wa_text(args: argparse.Namespace) -> int:
    async with _isms(args) as isms:
        outcome = await isms.send_whatsapp_text(args.to, args.text)
    print(f"accepted: message id {outcome.message_id}")
    return OK


async def _wa_file(args: argparse.Namespace) -> int:
    async with _isms(args) as isms:
        outcome = await isms.send_whatsapp_file(args.to, args.url, args.file_name)
    print(f"accepted: message id {outcome.message_id}")
    return OK


async def _balance(args: argparse.Namespace) -> int:
    async with _isms(args) as isms:
        balance = await isms.get_balance()
    print(f"credits: {balance.credits}")
    return OK


async def _credits(args: argparse.Namespace) -> int:
    async with _smscommy(args) as smsmy:
        credits = await smsmy.get_credits()
    used = "unknown" if credits.used is None else credits.used
    print(f"credits used: {used}\ncredits left: {credits.remaining}")
    return OK


def _webhook_decode(args: argparse.Namespace) -> int:
    try:
        decoded = decode_response(args.value)
    except WebhookError as error:
        return _fail(str(error))
    print(json.dumps(decoded, ensure_ascii=False, indent=2))
    return OK


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(recipients=args.recipients, out=sys.stdout)
