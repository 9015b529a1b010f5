"""Driving one webhook server at saturation with wrk (for benchmarks/webhooks.py).

Why wrk: an aiohttp client on the same 2-core machine tops out near 8,000 callbacks/s, below
what one core of uvicorn serves, so its callbacks/s measured the client, and the server it
drove sat idle half the time, paying an epoll wake-up per request that all three servers
share and that flattened their ratios. wrk (C, one thread, 16 keep-alive connections) on a
core of its own keeps the server's core busy: callbacks/s is then the server's capacity on
one core, and its CPU per callback what a busy server pays.

The Lua script gives every request its own message id (a counter in ``request()``) and
counts every answer that is not a 200 (``response()``): a run with one fails loudly.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

CONNECTIONS = 16
# Where the counter goes: request_of() is called with it, and its text split there.
MARK = 7_130_000_000_017
# Each wrk thread counts from its own range (one thread is used: it has a core to itself).
THREAD_SPAN = 10**9

LUA = """
local target_head, target_tail = %(target_head)s, %(target_tail)s
local json_head, json_tail, tails = %(json_head)s, %(json_tail)s, {%(tails)s}
local form_head, headers = %(form_head)s, {%(headers)s}
local method, has_body = %(method)s, %(has_body)s
local letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local threads = {}

function setup(thread)
  thread:set("offset", #threads * %(span)d)
  table.insert(threads, thread)
end

function init(args)
  counter = tonumber(args[1]) + offset
  not_ok = 0
end

-- base64 of a string whose length is a multiple of 3 (the few bytes around the id; the
-- rest of the JSON's base64 does not change and is precomputed), URL-quoted as urlencode().
local function b64(text)
  local out = {}
  for i = 1, #text, 3 do
    local a, b, c = text:byte(i, i + 2)
    local n = a * 65536 + b * 256 + c
    for shift = 18, 0, -6 do
      local k = math.floor(n / 2 ^ shift) %% 64 + 1
      out[#out + 1] = letters:sub(k, k)
    end
  end
  return (table.concat(out):gsub("[+/]", {["+"] = "%%2B", ["/"] = "%%2F"}))
end

function request()
  local id = string.format("%%d", counter)
  counter = counter + 1
  local path = target_head and target_head .. id .. target_tail or target_tail
  if not has_body then
    return wrk.format(method, path, headers)
  end
  local middle = json_head .. id
  local fill = (3 - #middle %% 3) %% 3
  middle = middle .. json_tail:sub(1, fill)
  return wrk.format(method, path, headers, form_head .. b64(middle) .. tails[fill + 1])
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local not_ok = 0
  for _, thread in ipairs(threads) do
    not_ok = not_ok + thread:get("not_ok")
  end
  local e = summary.errors
  io.write(string.format("WRK-RESULT %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    not_ok, e.connect + e.read + e.write + e.timeout))
end
"""


def lua(text: str | bytes) -> str:
    """A Lua string literal of ``text`` (every byte escaped: no quoting surprises)."""
    data = text.encode() if isinstance(text, str) else text
    return '"' + "".join(f"\\{byte}" for byte in data) + '"'


def split(text: bytes, at_most: int = 1) -> list[bytes]:
    """``text`` before and after the one place the counter goes (if it has one)."""
    pieces = text.split(str(MARK).encode())
    assert len(pieces) - 1 <= at_most, text
    return pieces


def target(request: dict[str, Any]) -> str:
    """The path and query of an aiohttp ``request``, as aiohttp sends them."""
    return f"{request['url']}?{urlencode(request['params'])}"


def script(request: dict[str, Any]) -> str:
    """The Lua script sending, with id ``n``, what ``request`` (``request_of(kind, MARK)``,
    aiohttp arguments) is with ``MARK`` replaced by ``n``: the same target and the same form
    body, whose one field is base64 of the JSON holding the id."""
    *target_head, target_tail = split(target(request).encode())
    assert target_head or "data" in request, "the id goes in the query or the body"
    values: dict[str, Any] = {"json_head": lua(""), "json_tail": lua(""), "tails": ""}
    values["form_head"], headers = lua(""), ""
    if "data" in request:
        ((field, encoded),) = request["data"].items()
        json_head, json_tail = split(base64.b64decode(encoded), at_most=1 - len(target_head))
        cut = len(json_head) - len(json_head) % 3  # the base64 that does not change
        values["form_head"] = lua(f"{field}=" + quote(base64.b64encode(json_head[:cut]), safe=""))
        values["json_head"], values["json_tail"] = lua(json_head[cut:]), lua(json_tail)
        tails = (quote(base64.b64encode(json_tail[fill:]), safe="") for fill in range(3))
        values["tails"] = ", ".join(lua(tail) for tail in tails)
        headers = '["Content-Type"] = "application/x-www-form-urlencoded"'
    return LUA % {
        **values,
        "target_head": lua(target_head[0]) if target_head else "nil",
        "target_tail": lua(target_tail),
        "headers": headers,
        "method": lua(request["method"]),
        "has_body": "true" if "data" in request else "false",
        "span": THREAD_SPAN,
    }


def missing() -> str | None:
    """Why this machine cannot drive a server with wrk, one core each; None when it can."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (`apt-get install wrk`, or `make bench` installs it)"
    if shutil.which("taskset") is None:
        return "taskset is not installed (util-linux)"
    if not hasattr(os, "sched_getaffinity"):
        return "no CPU affinity on this system (Linux's sched_getaffinity)"
    if len(os.sched_getaffinity(0)) < 2:
        return "one core only: the server and wrk need one each"
    return None


def version() -> str:
    """``wrk debian/4.1.0-3+b2 [epoll]``: the first words of ``wrk --version``."""
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    return done.stdout.split(" Copyright")[0].strip()


def cores() -> tuple[int, int]:
    """(the server's core, wrk's core): the first two this process may run on."""
    first, second, *_ = sorted(os.sched_getaffinity(0))
    return first, second


def run(
    url: str, request: dict[str, Any], seconds: int, first: int, connections: int = CONNECTIONS
) -> tuple[int, float, float]:
    """(callbacks answered, seconds, wrk's CPU seconds) of wrk on its own core, ``seconds``
    long, ids counting from ``first``. Raises when any answer was not a 200 or a socket
    failed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "callbacks.lua"
        path.write_text(script(request), encoding="utf-8")
        command = ["taskset", "-c", str(cores()[1]), "wrk", "-t1", f"-c{connections}"]
        command += [f"-d{seconds}s", "-s", str(path), url, "--", str(first)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"^WRK-RESULT (\d+) (\d+) (\d+) (\d+)$", done.stdout, flags=re.M)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    answered, micros, not_ok, failed = (int(group) for group in found.groups())
    if not_ok or failed or not answered:
        raise RuntimeError(
            f"{url}: {not_ok} answers not 200 and {failed} socket errors in {answered}"
        )
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return answered, micros / 1e6, cpu


def check(request_of: Callable[[int], dict[str, Any]]) -> None:
    """Send requests of the script, one connection, to a server that notes them, and compare
    them with ``request_of(n)`` byte for byte: wrk sends the target and the form body that
    the aiohttp driver (and ``--stages``) send, a different id each."""
    seen: list[tuple[str, bytes]] = []

    async def note(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                seen.append((head.split()[1].decode(), body))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(note, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server:
            await asyncio.to_thread(run, url, request_of(MARK), 1, 5, 1)

    asyncio.run(serve())

    def sent(n: int) -> tuple[str, bytes]:
        expected = request_of(n)
        return target(expected), urlencode(expected.get("data", {})).encode()

    assert len(seen) > 10, seen
    # wrk builds a request or two it does not send before the run starts.
    start = next(n for n in range(5, 10) if sent(n) == seen[0])
    assert seen[:1000] == [sent(n) for n in range(start, start + len(seen[:1000]))]
