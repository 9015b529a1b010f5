"""The ledger's reading side (synchronous SQL): summaries, records, look-ups by message id.

Rows become ``LedgerRecord``s through the project's one converter (``_convert``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .._convert import record_from_row
from ..models import OutcomeStatus
from ..webhooks.events import DeliveryStatus
from ._db import Connection
from ._delivery import FAMILIES
from ._models import IN_FLIGHT, NO_REPORT_EXPECTED, JobSummary, LedgerRecord, decode_key

__all__ = ["AWAITING", "NO_REPORT", "find", "records_page", "summary"]

AWAITING = "awaiting"
NO_REPORT = "no_report"

_COLUMNS = (
    "j.name, s.key, s.gateway, s.recipient, s.state, s.position, s.code, s.reason,"
    " s.message_id, s.request_id, s.seqno, s.delivery, s.delivery_code, s.reported_at,"
    " s.attempts, s.began_at, s.settled_at, s.fingerprint, s.text"
)
_NAMES = (
    *("job", "key", "gateway", "recipient", "outcome", "index", "code", "reason"),
    *("message_id", "request_id", "seqno", "delivery", "delivery_code", "reported_at"),
    *("attempts", "began_at", "settled_at", "fingerprint", "text"),
)


def _record(row: Sequence[Any]) -> LedgerRecord:
    data = dict(zip(_NAMES, row, strict=True))
    if data["fingerprint"] is not None:
        data["fingerprint"] = bytes(data["fingerprint"]).hex()
    if data["outcome"] == IN_FLIGHT:
        data["outcome"] = None
    if data["job"] == "":
        data["job"] = None  # a keyed single send
        data["index"] = None
    else:
        data["ref"] = decode_key(data["key"])[0]
    return record_from_row(data)


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def summary(conn: Connection, job: str, now: float, horizon: float) -> JobSummary:
    """Counts of a job's outcomes and of its accepted messages' delivery states."""
    found = conn.execute("SELECT id FROM jobs WHERE name = ? AND id <> 0", (job,)).fetchone()
    outcomes = {status.value: 0 for status in OutcomeStatus}
    delivery = {status.value: 0 for status in DeliveryStatus}
    delivery.update({AWAITING: 0, NO_REPORT: 0, NO_REPORT_EXPECTED: 0})
    if found is None:
        return JobSummary(job=job, total=0, outcomes=outcomes, delivery=delivery)
    in_flight, first, last = 0, None, None
    for state, count, began, settled, reported in conn.execute(
        "SELECT state, count(*), min(coalesce(began_at, settled_at)), max(settled_at),"
        " max(reported_at) FROM sends WHERE job = ? GROUP BY state",
        (found[0],),
    ):
        if state == IN_FLIGHT:
            in_flight += count
        else:
            outcomes[state] = outcomes.get(state, 0) + count
        first = _earliest(first, began)
        last = max((t for t in (last, began, settled, reported) if t is not None), default=None)
    for state, count in conn.execute(
        "SELECT coalesce(delivery, CASE WHEN settled_at >= ? THEN ? ELSE ? END), count(*)"
        " FROM sends WHERE job = ? AND state = 'accepted' GROUP BY 1",
        (now - horizon, AWAITING, NO_REPORT, found[0]),
    ):
        delivery[state] = delivery.get(state, 0) + count
    return JobSummary(
        job=job,
        total=in_flight + sum(outcomes.values()),
        outcomes=outcomes,
        delivery=delivery,
        in_flight=in_flight,
        first_activity=_time(first),
        last_activity=_time(last),
    )


def _earliest(current: float | None, value: float | None) -> float | None:
    if current is None:
        return value
    return current if value is None else min(current, value)


def records_page(
    conn: Connection,
    job: str,
    *,
    delivery: str | None,
    outcome: str | None,
    after: str | None,
    limit: int,
    now: float,
    horizon: float,
) -> list[LedgerRecord]:
    """One page of a job's records in key order, after the key ``after``."""
    where = ["j.name = ?", "s.key > ?"]
    args: list[Any] = [job, after if after is not None else ""]
    if outcome is not None:
        where.append("s.state = ?")
        args.append(outcome)
    if delivery is not None:
        where.append("s.state = 'accepted'")
        if delivery == AWAITING:
            where.append("s.delivery IS NULL AND s.settled_at >= ?")
            args.append(now - horizon)
        elif delivery == NO_REPORT:
            where.append("s.delivery IS NULL AND s.settled_at < ?")
            args.append(now - horizon)
        else:
            where.append("s.delivery = ?")
            args.append(delivery)
    query = (
        f"SELECT {_COLUMNS} FROM sends s JOIN jobs j ON j.id = s.job"  # noqa: S608
        f" WHERE {' AND '.join(where)} ORDER BY s.key LIMIT {int(limit)}"
    )
    return [_record(row) for row in conn.execute(query, args)]


def find(conn: Connection, message_id: str, gateway: str) -> list[LedgerRecord]:
    """Every send with this gateway message id (several where the gateway shares ids)."""
    gateways = FAMILIES.get(gateway, (gateway,))
    marks = ",".join("?" * len(gateways))
    query = (
        f"SELECT {_COLUMNS} FROM sends s JOIN jobs j ON j.id = s.job"  # noqa: S608
        f" WHERE s.message_id = ? AND s.gateway IN ({marks}) ORDER BY s.job, s.key"
    )
    return [_record(row) for row in conn.execute(query, (message_id, *gateways))]
