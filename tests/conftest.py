from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from messaging_async import IsmsClient, RetryPolicy
from messaging_async.testing import FakeGateway

from .gateway import PASSWORD, USERNAME, TestGateway, serve_in_a_thread
from .pgcluster import Cluster, find_bindir, running_cluster

JSON_URL = "https://www.isms.com.my/isms_send_json.php"
CLASSIC_URL = "https://www.isms.com.my/isms_send_all_id.php"
BALANCE_URL = "https://www.isms.com.my/isms_balance_json.php"

# Hypothesis measures examples by the wall clock: a 200 ms deadline per example, and a health
# check that fails when generating them is slow. CI's machine may be loaded, where both fail
# a correct test; no property here is about speed, so neither applies to any of them.
settings.register_profile(
    "loaded-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("loaded-machine")


def all_accepted(request: httpx.Request) -> httpx.Response:
    """A respx side effect: iSMS accepting every message of a JSON-API request."""
    body = json.loads(request.content)
    results = [
        {"dstno": message["dstno"], "code": 2000, "sms_id": f"id-{position}"}
        for position, message in enumerate(body["messages"])
    ]
    return httpx.Response(
        200,
        json={"total_failed": 0, "total_credits_used": len(results), "results": results},
    )


def sent_bodies(calls: Any) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in calls]


def make_client(**overrides: Any) -> IsmsClient:
    settings: dict[str, Any] = {
        "username": USERNAME,
        "password": PASSWORD,
        "sender_id": "MyCo",
        "retry": RetryPolicy.no_wait(),
    }
    settings.update(overrides)
    return IsmsClient(**settings)


@pytest.fixture
def gateway() -> TestGateway:
    return TestGateway()


@pytest.fixture
async def client(gateway: TestGateway) -> AsyncIterator[IsmsClient]:
    async with make_client(transport=gateway.transport()) as opened:
        yield opened


@pytest.fixture
def sandbox() -> Iterator[tuple[FakeGateway, str]]:
    """A sandbox on 127.0.0.1, served by its own event loop in a thread (the CLI runs its own)."""
    fake = FakeGateway()
    with serve_in_a_thread(fake) as url:
        yield fake, url


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Async tests run on asyncio; a module that promises trio too overrides this with
    ``params=["asyncio", "trio"]`` (anyio's own default would run every module on both)."""
    return "asyncio"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for the whole session (see ``tests/pgcluster.py``)."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("initdb/pg_ctl are missing: `make test` installs Debian's postgresql")
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (make test installs them)")
    with running_cluster(bindir) as cluster:
        yield cluster


@pytest.fixture
def pg_dsn(pg_cluster: Cluster) -> str:
    """A fresh database of the session's cluster, one per test."""
    return pg_cluster.create_database()
