"""``UnitEntries`` of the runner's rows (``of_rows``): the same entries and columns as
the columns given, read from the rows only when asked for."""

from __future__ import annotations

import gc

from messaging_async import Sms
from messaging_async.ledger import Entry
from messaging_async.ledger._models import UnitEntries

FIELDS = (0, 1, 2, 5, 4)  # a pending's position, to, ref, content, seqno


def _rows(count: int) -> list[tuple[object, ...]]:
    """Rows laid out as the runner's pendings: position, to, ref, item, seqno, content;
    positions not consecutive, and not in order (a resumed unit's, a reordered input's)."""
    return [
        (
            (7 + 3 * n) % 11,
            f"6012{n:07d}",
            f"r{n}" if n % 2 else None,
            object(),
            None,
            Sms(to="1", text=f"{n}"),
        )
        for n in range(count)
    ]


def test_entries_of_rows_are_those_of_their_columns() -> None:
    rows = _rows(4)
    of_rows = UnitEntries.of_rows(rows, FIELDS)
    positions, tos, refs, _, seqnos, contents = zip(*rows, strict=True)
    given = UnitEntries(positions, tos, refs, contents, seqnos)
    assert of_rows.columns == given.columns
    assert len(of_rows) == 4
    assert list(of_rows) == list(given)
    assert of_rows[1] == Entry(10, "60120000001", "r1", rows[1][5], None)
    assert of_rows[-1] == given[-1]
    assert of_rows[1:3] == given[1:3]
    assert repr(of_rows) == repr(given)


def test_entries_of_rows_take_the_contents_given() -> None:
    rows = _rows(3)
    texts = ("a", "b", "c")
    entries = UnitEntries.of_rows(rows, FIELDS, texts)
    assert entries.columns[3] == texts
    assert [entry.content for entry in entries] == list(texts)
    assert [entry.position for entry in entries] == [7, 10, 2]


def test_no_rows_no_entries() -> None:
    entries = UnitEntries.of_rows([], FIELDS)
    assert len(entries) == 0
    assert entries.columns == ((), (), (), (), ())
    assert list(entries) == []
    assert UnitEntries.of_rows([], FIELDS, ()).columns == ((), (), (), (), ())


def test_entries_of_rows_keep_no_column() -> None:
    """What a claim keeps while it waits for its trip: the rows, no tuple a column (five
    a unit, which the young collections walked)."""
    rows = _rows(50)
    entries = UnitEntries.of_rows(rows, FIELDS)
    entries.columns  # read, and not kept  # noqa: B018
    kept = [o for o in gc.get_referents(entries) if isinstance(o, tuple) and len(o) == 50]
    assert kept == []
