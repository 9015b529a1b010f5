"""``messaging-async webhook serve --ledger PATH --port N``: a ready receiver for CLI users.

It records every delivery report and inbound WhatsApp message into the ledger, joined to
the sends journalled there (``WebhookReceiver(ledger=...)``). The shared secret comes from
``$MESSAGING_ASYNC_WEBHOOK_SECRET`` (never from the command line: it would show in the
process list); register ``…/isms/delivery?token=SECRET`` and the other routes with the
gateways. Needs uvicorn (``pip install messaging-async[sandbox]``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from ..ledger import SqliteLedger
from ..webhooks import WebhookReceiver

__all__ = ["SECRET_VARIABLE", "add_webhook_serve_command"]

SECRET_VARIABLE = "MESSAGING_ASYNC_WEBHOOK_SECRET"  # noqa: S105 - a variable's name


def add_webhook_serve_command(webhook: Any) -> None:
    serve: argparse.ArgumentParser = webhook.add_parser(
        "serve", help=f"receive delivery reports into a ledger (secret: ${SECRET_VARIABLE})"
    )
    serve.add_argument("--ledger", type=Path, required=True, help="the ledger file")
    serve.add_argument("--port", type=int, required=True, help="0: any free port")
    serve.add_argument(
        "--host", default="127.0.0.1", help="default: 127.0.0.1 (0.0.0.0: every interface)"
    )
    serve.set_defaults(run=serve_webhooks, is_async=True)


async def serve_webhooks(args: argparse.Namespace) -> int:
    secret = os.environ.get(SECRET_VARIABLE, "")
    if len(secret) < 16:
        print(
            f"error: set ${SECRET_VARIABLE} to a secret of 16 characters or more", file=sys.stderr
        )
        return 2
    try:
        import uvicorn
    except ImportError:
        print("error: webhook serve needs uvicorn: pip install messaging-async[sandbox]")
        return 2
    async with SqliteLedger(args.ledger) as ledger:
        receiver = WebhookReceiver(secret=secret, ledger=ledger)
        config = uvicorn.Config(
            receiver, host=args.host, port=args.port, access_log=False, log_level="warning"
        )
        server = uvicorn.Server(config)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_announce, server, args.ledger)
            await server.serve()
            tasks.cancel_scope.cancel()
    return 0


async def _announce(server: Any, ledger: Path) -> None:
    """Say where it listens once it does (``--port 0`` picks a free port)."""
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, no event
        await anyio.sleep(0.05)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    print(f"listening on http://{host}:{port} recording into {ledger}", flush=True)
