"""Delivery reports and inbound WhatsApp messages, joined to sends (synchronous SQL).

A report joins its send by the gateway's message id; where ids are shared (iSMS classic:
one id for up to 50 numbers) by id *and* number. State only moves forward by rank
(queued < sent < delivered/failed… < read): a late ``queued`` after ``delivered`` changes
nothing, and the same report twice is stored once. A report that comes before its send
is committed waits in ``reports`` (``joined = 0``) and is joined when the send settles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..models import Outcome
from ..webhooks.events import DeliveryReport
from ._db import Connection

__all__ = [
    "FAMILIES",
    "WINDOW_SECONDS",
    "family_of",
    "has_waiting",
    "join_settled",
    "join_waiting",
    "rank_of",
    "record_inbound",
    "record_report",
    "window_open",
]

WINDOW_SECONDS = 24 * 3600.0
"""WhatsApp's customer-service window after a user's last message."""

FAMILIES: dict[str, tuple[str, ...]] = {
    "isms": ("isms", "whatsapp"),
    "whatsapp": ("isms", "whatsapp"),
    "smscommy": ("smscommy",),
}
"""Which sends' gateways a report's gateway can join: iSMS reports WhatsApp receipts too."""

_RANKS = {"unknown": 0, "queued": 1, "sent": 2, "delivered": 3, "read": 4}
_FINAL_RANK = 3  # delivered, failed, expired, rejected, not in service…: the telco's verdict


def rank_of(status: str) -> int:
    """How far along a delivery state is; any state not named is a final verdict."""
    return _RANKS.get(status, _FINAL_RANK)


def family_of(gateway: str) -> str:
    """A send's gateway or a report's (``isms_whatsapp``: a WhatsApp receipt) → the family
    whose message ids it shares."""
    return "isms" if gateway in ("isms", "whatsapp", "isms_whatsapp") else gateway


def _digits(number: str | None) -> str:
    return "".join(ch for ch in number or "" if ch.isdigit())


def record_report(conn: Connection, report: DeliveryReport, now: float) -> bool:
    """Store ``report`` (once) and move its send's delivery state; True if it joined one."""
    family = family_of(report.gateway)
    recipient = _digits(report.recipient)
    when = report.timestamp.timestamp() if report.timestamp is not None else now
    row = (family, report.message_id, recipient, report.status.value, report.status_code or "")
    inserted = conn.execute(
        "INSERT OR IGNORE INTO reports (family, message_id, recipient, status, status_code,"
        " reported_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*row, when, now),
    ).rowcount
    if not inserted:  # a repeat: counted once, already applied if it could be
        found = conn.execute(
            "SELECT joined FROM reports WHERE family = ? AND message_id = ? AND recipient = ?"
            " AND status = ? AND status_code = ?",
            row,
        ).fetchone()
        return bool(found and found[0])
    joined = _apply(conn, family, *row[1:], when)
    if joined:
        conn.execute(
            "UPDATE reports SET joined = 1 WHERE family = ? AND message_id = ? AND recipient = ?"
            " AND status = ? AND status_code = ?",
            row,
        )
    return joined


def _apply(
    conn: Connection,
    family: str,
    message_id: str,
    recipient: str,
    status: str,
    status_code: str,
    when: float,
) -> bool:
    gateways = FAMILIES.get(family, (family,))
    marks = ",".join("?" * len(gateways))
    sends = conn.execute(
        f"SELECT job, key, recipient FROM sends WHERE message_id = ? AND gateway IN ({marks})",  # noqa: S608
        (message_id, *gateways),
    ).fetchall()
    targets = [send for send in sends if recipient and send[2] == recipient]
    if not targets and len(sends) == 1:
        targets = sends  # one send has this id: the number's format may differ, or be absent
    rank = rank_of(status)
    conn.executemany(
        "UPDATE sends SET delivery = ?, delivery_rank = ?, delivery_code = ?, reported_at = ?"
        " WHERE job = ? AND key = ? AND delivery_rank < ?",
        [(status, rank, status_code or None, when, job, key, rank) for job, key, _ in targets],
    )
    return bool(targets)


def has_waiting(conn: Connection) -> bool:
    """Whether any report waits for its send (one look at a small index)."""
    return conn.execute("SELECT 1 FROM reports WHERE joined = 0 LIMIT 1").fetchone() is not None


def join_settled(conn: Connection, gateway: str, outcomes: Sequence[Outcome]) -> None:
    """Join the reports that came before these outcomes' sends were committed; their ids
    are gathered only where some report waits (the usual settle looks once, finds none)."""
    if has_waiting(conn):
        ids = [o.message_id for o in outcomes if o.message_id is not None]
        join_waiting(conn, family_of(gateway), ids)


def join_waiting(conn: Connection, family: str, message_ids: Iterable[str]) -> int:
    """Join reports that came before these sends were committed; returns how many joined."""
    ids = list(message_ids)
    if not ids or not has_waiting(conn):
        return 0  # nothing waits (the usual case)
    marks = ",".join("?" * len(ids))
    query = (
        "SELECT id, message_id, recipient, status, status_code, reported_at FROM reports"  # noqa: S608
        f" WHERE joined = 0 AND family = ? AND message_id IN ({marks}) ORDER BY id"
    )
    waiting = conn.execute(query, (family, *ids)).fetchall()
    done = [(report_id,) for report_id, *rest in waiting if _apply(conn, family, *rest)]
    conn.executemany("UPDATE reports SET joined = 1 WHERE id = ?", done)
    return len(done)


def record_inbound(conn: Connection, number: str, sent_at: float | None, now: float) -> None:
    """Note that ``number`` wrote to us (at ``sent_at``, by its own clock, or now); only
    the latest message matters. A time in the future is taken as now."""
    at = now if sent_at is None else min(sent_at, now)
    conn.execute(
        "INSERT INTO inbound (number, last_at) VALUES (?, ?)"
        " ON CONFLICT (number) DO UPDATE SET last_at = max(inbound.last_at, excluded.last_at)",
        (_digits(number), at),
    )


def window_open(conn: Connection, number: str, now: float) -> bool:
    found = conn.execute("SELECT last_at FROM inbound WHERE number = ?", (_digits(number),))
    row = found.fetchone()
    return row is not None and now - float(row[0]) < WINDOW_SECONDS
