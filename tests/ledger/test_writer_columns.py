"""The writer process's fast roads (``_writer``'s op decoders) write exactly what the
general road writes: a fresh job's unit claimed straight from the columns the parent sent
(no ``Entry`` made in the child) against ``Store.plan_and_begin`` of the entries, the way
a worker thread writes them; the whole ``sends`` table compared, values and SQL types, and
the plans read back by the parent's own decoder."""

from __future__ import annotations

import io
import operator
import pickle
import pickletools
from pathlib import Path
from typing import Any

import pytest

from messaging_async import Sms, WhatsAppFile, WhatsAppTemplate, WhatsAppText
from messaging_async.ledger import Entry, Plan, _writer_calls
from messaging_async.ledger._batch import Call
from messaging_async.ledger._owner import Owner
from messaging_async.ledger._schema import connect, migrate
from messaging_async.ledger._store import Store
from messaging_async.ledger._writer_serve import Inbox, Writer

from .conftest import sends_rows, sms_entries

_SALT = bytes(range(16))
_OWNER = Owner("host", 4_194_000, 1.0)
_NOW = 1_800_000_000.0

TRICKY = [
    "plain",
    "unit separator \x1f inside, and t\x1f",
    "unicode: é ß 中文 😀 \u2028",
    "a lone surrogate \ud800",
    "",
    "a NUL \x00 inside",
]


def _prepared(path: Path) -> Path:
    conn = connect(str(path))
    migrate(conn)
    conn.execute("INSERT INTO meta (name, value) VALUES ('salt', ?)", (_SALT,))
    conn.close()
    return path


def _units() -> list[tuple[list[Entry], bool]]:
    """A fresh job's units, each with whether it asks for delivery reports: texts of
    every kind, seqnos and no reports (sms.com.my NoDR), WhatsApp and plain-text contents
    (canonical forms), a unit longer than one statement; then ones the general road
    plans: refs, and positions planned already."""
    texts = [
        Entry(n, f"6012{n:07d}", None, Sms(to=f"6012{n:07d}", text=text), None)
        for n, text in enumerate(TRICKY)
    ]
    seqnos = sms_entries(5, start=10, seqnos=True)
    seqnos[2] = seqnos[2]._replace(seqno=None)
    kinds: list[object] = [
        WhatsAppText(to="60130000020", text="hello \x1f there"),
        WhatsAppTemplate(to="60130000021", template_code="otp", params={"code": 1234}),
        WhatsAppTemplate(to="60130000022", template_code="otp", language="ms", params=[1, "x"]),
        WhatsAppFile(to="60130000023", url="https://example.invalid/a.pdf", file_name="a.pdf"),
        "a plain text",
        Sms(to="60130000025", text="an Sms among others"),
    ]
    mixed = [Entry(20 + i, f"601300000{20 + i}", None, c, None) for i, c in enumerate(kinds)]
    return [
        (texts, True),
        (seqnos, False),
        (mixed, True),
        (sms_entries(150, start=100, text="long unit {n}"), True),
        (sms_entries(3, start=300, refs=True), True),
        (sms_entries(2, start=10, text="planned again {n}"), True),
    ]


FAST = 4
"""How many of ``_units()`` (the first ones) a fresh job claims straight from columns."""


def _by_columns(path: Path, store_text: bool) -> list[Plan | type[BaseException]]:
    """The units through the writer process's decoders, as its parent sends them."""
    writer = Writer(Inbox(), io.BytesIO())
    writer.open(str(path), store_text, 120.0)
    assert writer.store is not None
    writer.now = _NOW
    writer.store.open_job("j", "isms", _OWNER)
    plans: list[Plan | type[BaseException]] = []
    for entries, reports in _units():
        op, args, read = _writer_calls.plan_and_begin("j", entries, False, reports)
        sent = pickle.loads(pickle.dumps(("trip", _NOW, [(op, args)])))  # noqa: S301 (ours)
        [(answer, error)] = writer.answer(sent)
        assert read is not None
        plans.append(read(answer) if error is None else type(error))
    writer.close()
    return plans


def _by_entries(path: Path, store_text: bool) -> list[Plan | type[BaseException]]:
    """The same units through ``Store.plan_and_begin``, as a worker thread runs them."""
    conn = connect(str(path))
    store = Store(conn, store_text=store_text, lease_seconds=120.0, clock=lambda: _NOW)
    store.open_job("j", "isms", _OWNER)
    plans: list[Plan | type[BaseException]] = []
    for entries, reports in _units():
        call: Call[Plan] = Call(store.plan_and_begin, ("j", entries, False, reports))
        store.run_trip([call])
        if call.error is None:
            assert call.result is not None
            plans.append(call.result)
        else:
            plans.append(type(call.error))
    conn.close()
    return plans


@pytest.mark.parametrize("store_text", [False, True])
def test_a_fresh_units_claims_from_columns_are_the_entries_claims(
    tmp_path: Path, entries_made: list[int], store_text: bool
) -> None:
    by_columns = _by_columns(_prepared(tmp_path / "columns.db"), store_text)
    assert entries_made == [len(entries) for entries, _ in _units()[FAST:]]  # only those: general
    by_entries = _by_entries(_prepared(tmp_path / "entries.db"), store_text)
    assert by_columns == by_entries
    sent = [plan if isinstance(plan, type) else len(plan.send) for plan in by_columns]
    # a text kept must be one SQLite can store: a lone surrogate fails its unit, either road
    assert sent == [UnicodeEncodeError if store_text else 6, 5, 6, 150, 3, 0]
    rows = sends_rows(tmp_path / "columns.db")
    assert len(rows) == 172 - 6 * store_text  # and the last unit's two, rejected as repeats
    assert rows == sends_rows(tmp_path / "entries.db")
    texts = {row[2]: row[2 * 6] for row in rows}  # key: text (NULL unless kept)
    assert (texts["p:0000000011"] == "Hi 11") is store_text
    assert (texts["p:0000000022"] == 'm otp ms ["1", "x"]') is store_text


def test_a_frame_sends_a_callers_str_and_int_classes_as_their_plain_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``_writer_calls.dumps`` (the frames' pickler) makes a caller's ``str`` and ``int``
    subclasses the plain values SQLite would bind (the characters, not what ``__str__``
    says; an enum's value), anywhere in a frame, with no pass over the columns; our own
    ``OutcomeStatus`` goes as it is, and plain values as ``pickle.dumps`` sends them."""
    from messaging_async.models import OutcomeStatus

    from .test_qa_writer import _callers_classes

    text, code = _callers_classes(monkeypatch)
    plain = ("trip", 1.5, [("op", ("job", (1, 2), ["601", None], [True, b"x", 0.5]))])
    assert _writer_calls.dumps(plain) == pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(_writer_calls.dumps(plain, memo=False)) == plain  # noqa: S301
    sent = ("trip", [text("6012"), (code(2000), OutcomeStatus.ACCEPTED)], {"k": text("v")})
    read = pickle.loads(_writer_calls.dumps(sent))  # noqa: S301 (made here)
    assert read == ("trip", ["6012", (2000, OutcomeStatus.ACCEPTED)], {"k": "v"})
    assert type(read[1][0]) is str
    assert type(read[1][1][0]) is int
    assert type(read[1][1][1]) is OutcomeStatus
    assert type(read[2]["k"]) is str


def _memoized(frame: bytes) -> int:
    """How many objects ``frame`` puts in pickle's memo."""
    return sum(op.name == "MEMOIZE" for op, _, _ in pickletools.genops(frame))


def test_a_frame_without_the_memo_sends_a_shared_object_once_a_place() -> None:
    """``dumps(memo=False)`` (the settles' frames): no memo, so a ``str`` met twice is
    pickled twice, and read back equal; with it (the claims'), once."""
    text = "Hi customer, your code is 123456"
    frame = ("trip", 1.5, [("op", ("job", [text, text], (1, None), [True, b"x", 0.5]))])
    fast = _writer_calls.dumps(frame, memo=False)
    assert _memoized(fast) == 0
    assert fast.count(text.encode()) == 2
    assert pickle.loads(fast) == frame  # noqa: S301 (made here)
    kept = _writer_calls.dumps(frame)
    assert _memoized(kept) > 0
    assert kept.count(text.encode()) == 1


@pytest.mark.anyio
async def test_a_trip_is_pickled_with_the_memo_only_where_a_claim_shares_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer process's trips (``memo_pays``): a claim whose messages share one text
    object (``Sms(to=n, text=t)`` for each number) goes with pickle's memo, the text once;
    a claim of texts each its own, and settles, without it; all written."""
    from messaging_async import SqliteLedger
    from messaging_async.ledger import _writer_client

    frames: list[tuple[list[str], bool]] = []
    dumps = _writer_calls.dumps

    def spied(message: Any, *, memo: bool = True) -> bytes:
        if type(message) is tuple and message[0] == "trip":
            frames.append(([op for op, _ in message[2]], memo))
        return dumps(message, memo=memo)

    monkeypatch.setattr(_writer_client, "dumps", spied)
    own = sms_entries(3)
    text = "one text for every number"
    shared = [
        Entry(n, f"6013{n:07d}", None, Sms(to=f"6013{n:07d}", text=text), None) for n in (3, 4, 5)
    ]
    async with SqliteLedger(tmp_path / "l.db", writer="process") as ledger:
        await ledger.open_job("j", gateway="isms")
        assert len((await ledger.plan_and_begin_unit("j", own)).send) == 3
        assert len((await ledger.plan_and_begin_unit("j", shared)).send) == 3
        numbers = tuple(entry.to for entry in own + shared)
        ids = tuple(f"id{n}" for n in range(6))
        await ledger.settle_accepted("j", range(6), numbers, (None,) * 6, ids, 2000)
        await ledger.close_job("j")
        summary = await ledger.summary("j")
    assert frames == [
        (["plan_and_begin"], False),
        (["plan_and_begin"], True),
        (["settle_accepted"], False),
    ]
    assert summary.outcomes["accepted"] == 6


def test_a_settle_sends_the_runners_columns_as_they_are_and_a_callers_other_as_lists() -> None:
    """``settle_accepted``'s encoder copies no tuple or list (the runner's columns: a
    copy was more for the young collections to walk), and makes a caller's other
    ``Sequence`` a list, which the child can read without its class."""
    indices, numbers, refs, ids = (0, 1), ("601", "602"), [None, None], ("a", "b")
    op, args, read = _writer_calls.settle_accepted("j", indices, numbers, refs, ids, 2000)
    assert (op, read) == ("settle_accepted", None)
    given = (indices, numbers, refs, ids)
    assert all(map(operator.is_, args[1:5], given))
    _, args, _ = _writer_calls.settle_accepted("j", range(2), numbers, refs, ids, 2000)
    assert args[1] == [0, 1]
    assert type(args[1]) is list
