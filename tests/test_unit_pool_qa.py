"""The pooled bulk runner cut short at random moments (QA of issue 17's fourth pass): the
report returned by a ``timeout=`` mixes units kept compact, rejected and unknown outcomes
and the ``not_sent`` of units the pool never ran, and must still hold the promises: every
recipient once, in input order, counts that add up, nothing ``not_sent`` ever sent."""

from __future__ import annotations

import json
import random

import anyio
import anyio.lowlevel
import httpx
import pytest

from messaging_async import Outcome, OutcomeStatus, Sms

from .conftest import all_accepted, make_client

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_reports_of_runs_cut_short_at_random_account_for_everyone() -> None:
    for seed in range(25):
        rng = random.Random(seed)
        slow = seed % 5 == 0  # every answer outlasts the timeout: this run is always cut short
        sent: list[str] = []

        async def answer(
            request: httpx.Request,
            rng: random.Random = rng,
            sent: list[str] = sent,
            slow: bool = slow,
        ) -> httpx.Response:
            messages = json.loads(request.content)["messages"]
            sent.extend(message["dstno"] for message in messages)
            for _ in range(rng.randint(0, 3)):
                await anyio.lowlevel.checkpoint()
            await anyio.sleep(0.05 if slow else rng.uniform(0, 0.004))  # in flight at the end
            results = [
                {"dstno": m["dstno"], "code": 2000 if rng.random() > 0.1 else -1010, "sms_id": "i"}
                for m in messages
            ]
            if rng.random() < 0.1:
                results.pop()  # a result missing: that recipient is unknown
            return httpx.Response(200, json={"results": results})

        count = 300 if slow else rng.randint(1, 300)  # slow: more units than concurrency
        batch = [  # two encodings, interleaved: units that alternate in input order
            Sms(to=f"6012{i:07d}", text="hi" if rng.random() < 0.7 else "hé", ref=i)
            for i in range(count)
        ]
        transport = httpx.MockTransport(answer)
        async with make_client(transport=transport, max_concurrency=rng.randint(1, 5)) as client:
            report = await client.send_sms_bulk(batch, timeout=rng.uniform(0.0005, 0.01))
        assert [outcome.index for outcome in report.outcomes] == list(range(count))
        assert [outcome.ref for outcome in report.outcomes] == list(range(count))
        assert sum(report.counts.values()) == count
        for status in OutcomeStatus:
            assert len(report.with_status(status)) == report.counts[status.value]
        assert tuple(report.outcomes) == report.outcomes[:]
        assert not {outcome.to for outcome in report.not_sent} & set(sent)
        if slow:  # units the pool never ran are in the report, not_sent
            assert report.counts["not_sent"] > 0, report.counts


class _Interrupt(BaseException):
    """What Ctrl-C (``KeyboardInterrupt``) or ``sys.exit`` raises inside a hook."""


@pytest.mark.parametrize("count", [40, 120])
async def test_a_hook_interrupted_gives_no_recipient_a_second_outcome(count: int) -> None:
    """An ``on_outcome`` hook that raises an Exception is logged and the run goes on; one
    that raises KeyboardInterrupt ends the call, and every outcome it saw is its only one."""
    seen: list[int] = []

    def hook(outcome: Outcome) -> None:
        seen.append(outcome.index)
        if len(seen) == 3:
            raise _Interrupt

    batch = [Sms(to=f"6012{i:07d}", text="hello") for i in range(count)]
    async with make_client(transport=httpx.MockTransport(all_accepted)) as client:
        with pytest.RaisesGroup(_Interrupt, flatten_subgroups=True):
            await client.send_sms_bulk(batch, on_outcome=hook)
    assert len(seen) == len(set(seen))
