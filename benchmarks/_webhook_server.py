"""Serve a webhook app with uvicorn on a free loopback port (for benchmarks/webhooks.py).

python benchmarks/_webhook_server.py receiver|fastapi PORT_FILE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from messaging_async.webhooks import WebhookReceiver, parse_smscommy_delivery

TOKEN = "benchmark-token-0123456789"
handled = [0]


async def on_delivery(report: Any) -> None:
    handled[0] += 1


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/smscommy/delivery")
    async def delivery(request: Request) -> str:
        params = dict(request.query_params)
        if params.pop("token", None) != TOKEN:
            raise HTTPException(status_code=401)
        await on_delivery(parse_smscommy_delivery(params))
        return "OK"

    return app


async def main(kind: str, port_file: Path) -> None:
    if kind == "receiver":
        app: Any = WebhookReceiver(secret=TOKEN, on_delivery=on_delivery)
        root = "/hooks"
    else:
        app, root = fastapi_app(), ""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, root_path=root
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port_file.write_text(str(server.servers[0].sockets[0].getsockname()[1]))  # noqa: ASYNC240
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
