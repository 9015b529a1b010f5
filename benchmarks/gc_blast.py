"""Blast's SDK-on-aiohttp and hand-written aiohttp client, each with the cyclic GC on and
off (``gc.disable()``), interleaved in one process: how much of the SDK's CPU per message
the garbage collector takes. Run it from two checkouts in turn (``PYTHONPATH=<checkout>``)
to compare them in the same minutes; prints one JSON line of each variant's best round.

    python benchmarks/gc_blast.py [COUNT] [ROUNDS]
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import blast
from _common import gateway_process, measure


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    batch = blast.messages(count)
    requests = -(-count // blast.CHUNK)
    variants = {
        "sdk-aiohttp": lambda url: lambda lat: blast.sdk(url, batch, 50, lat, "aiohttp"),
        "hand": lambda url: lambda lat: blast.hand_aiohttp(url, batch, 50, lat),
    }
    best: dict[str, dict[str, float]] = {}
    with gateway_process() as url:
        for _ in range(rounds):
            for name, make in variants.items():
                for mode in ("gc on", "gc off"):
                    if mode == "gc off":
                        gc.disable()
                    gc.collect()
                    try:
                        figures = measure(url, make(url), count, requests)
                    finally:
                        gc.enable()
                    key = f"{name}, {mode}"
                    if key not in best or figures["msg/s"] > best[key]["msg/s"]:
                        best[key] = figures
    print(
        json.dumps(
            {
                k: {"msg/s": round(v["msg/s"]), "µs/msg": round(v["client µs/msg"], 2)}
                for k, v in best.items()
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
