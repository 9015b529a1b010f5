"""A minimal, fast iSMS gateway for benchmarks, run in its own process on 127.0.0.1.

Plain asyncio and HTTP/1.1 keep-alive, no framework: it answers the JSON API with a result
per recipient, the classic API with a trx id, and WhatsApp sends with a message id, so the
client side is what the benchmarks measure. ``GET /cpu`` returns this process's CPU seconds.

    python benchmarks/_gateway_server.py PORT_FILE [DELAY]

``DELAY`` (seconds, default 0) is how long each send takes to answer, as a real gateway's
round trip does; connections keep serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

COUNTER = [1_000_000_000]
DELAY = [0.0]


def answer(path: str, body: bytes) -> bytes:
    if path.endswith("isms_send_json.php"):
        request = json.loads(body)
        results = []
        for message in request["messages"]:
            COUNTER[0] += 1
            results.append({"dstno": message["dstno"], "code": 2000, "sms_id": str(COUNTER[0])})
        return json.dumps(
            {"total_failed": 0, "total_credits_used": len(results), "results": results}
        ).encode()
    if path.endswith("isms_send_all_id.php"):
        COUNTER[0] += 1
        return f"2000 = SUCCESS:{COUNTER[0]}".encode()
    if path.endswith("isms_send_waba.php"):
        COUNTER[0] += 1
        return json.dumps(
            {"requestId": "R", "statusCode": "OK", "messageId": str(COUNTER[0])}
        ).encode()
    if path == "/cpu":
        return str(time.process_time()).encode()
    return b"-1008"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode()
            length = 0
            for line in lines[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            if DELAY[0] and path != "/cpu":
                await asyncio.sleep(DELAY[0])
            payload = answer(path, body)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port_file: Path) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port_file.write_text(str(server.sockets[0].getsockname()[1]))  # noqa: ASYNC240 - once, at start
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    DELAY[0] = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    asyncio.run(main(Path(sys.argv[1])))
