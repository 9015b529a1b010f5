"""A journalled blast, run as a subprocess by tests/test_ledger_crash.py and killed at
random moments: ``python _journalled_blast.py GATEWAY BASE_URL LEDGER COUNT``.

It prints ``ready`` once its ledger and client are open, then sends ``COUNT`` SMS under
one job; run again, it resumes. Exits 0 with ``done`` when the job is finished.
"""

from __future__ import annotations

import sys

import anyio

from messaging_async import IsmsClient, Sms, SmsComMyClient, SqliteLedger
from messaging_async.testing import FakeGateway

JOB = "crash-blast"


def recipients(count: int) -> list[Sms]:
    return [Sms(to=f"60125{n:06d}", text=f"Promo {n}") for n in range(count)]


async def blast(gateway: str, base_url: str, path: str, count: int) -> None:
    builder = FakeGateway()  # only to build a client for the served sandbox
    async with SqliteLedger(path) as ledger:
        client: IsmsClient | SmsComMyClient
        if gateway == "isms":
            client = builder.isms_client(base_url=base_url, ledger=ledger, max_concurrency=2)
        else:
            client = builder.smscommy_client(base_url=base_url, ledger=ledger, max_concurrency=4)
        async with client:
            # The ledger's writer process starts at its first job: started here, before
            # "ready", so that the test's kills land in the blast, not in its start.
            await ledger.open_job("warm-up", gateway=gateway)
            await ledger.close_job("warm-up")
            print("ready", flush=True)  # noqa: T201 - the test reads it
            report = await client.send_sms_bulk(recipients(count), job=JOB)
    print("done", report.counts, flush=True)  # noqa: T201


if __name__ == "__main__":
    gateway, base_url, path, count = sys.argv[1:5]
    anyio.run(blast, gateway, base_url, path, int(count))
