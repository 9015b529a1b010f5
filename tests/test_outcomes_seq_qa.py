"""``Outcomes`` used as the tuple it replaced, the way users do (QA of issue 17's fourth
pass): the compact form must not show through where a tuple would have answered."""

from __future__ import annotations

import copy
import json
import pickle
import sys
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from messaging_async import BulkReport, Sms, _outcomes_seq
from messaging_async._outcomes_seq import Outcomes
from messaging_async.models import Outcome

from .conftest import all_accepted, make_client
from .test_outcomes_seq import compact_unit, outcome


def mixed() -> tuple[Outcomes, tuple[Outcome, ...]]:
    """A report's sequence of two compact units around a rejected outcome, and its tuple."""
    first, first_outcomes = compact_unit([0, 1, 2])
    second, second_outcomes = compact_unit([4, 5])
    rare = outcome(3)
    outcomes = Outcomes.collected([rare], [second, first])
    return outcomes, (*first_outcomes, rare, *second_outcomes)


class _Position:
    """An index that is not an int (numpy's integers, a user's own type): ``__index__``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


@pytest.mark.parametrize("value", [1, 4, -1, -6])
def test_any_index_a_tuple_takes_reads_a_compact_outcome(value: int) -> None:
    outcomes, expected = mixed()
    assert outcomes[_Position(value)] == expected[_Position(value)]


@pytest.mark.parametrize("value", [1.0, "1", None])
def test_what_a_tuple_refuses_as_an_index_is_refused(value: object) -> None:
    outcomes, expected = mixed()
    with pytest.raises(TypeError):
        expected[value]  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        outcomes[value]  # type: ignore[call-overload]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_report_pickles_and_copies_as_its_tuple_would(protocol: int) -> None:
    outcomes, expected = mixed()
    outcomes[0]  # a unit read: its outcomes are cached, and need not travel
    report = BulkReport(outcomes=outcomes, credits_used=Decimal(5))
    back = pickle.loads(pickle.dumps(report, protocol))  # noqa: S301 - our own bytes
    assert back == report
    assert tuple(back.outcomes) == expected
    assert back.counts == report.counts
    for copied in (copy.copy(outcomes), copy.deepcopy(outcomes)):
        assert copied == expected
        assert list(reversed(copied)) == list(reversed(expected))


def test_units_whose_parts_alternate_are_each_parsed_once_per_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two encodings interleaved in the input: two units, each split into a part per
    recipient. Reading in order (or backwards, or by position) parses each unit once."""
    evens, even_outcomes = compact_unit(list(range(0, 200, 2)))
    odds, odd_outcomes = compact_unit(list(range(1, 200, 2)))
    expected = tuple(sorted([*even_outcomes, *odd_outcomes], key=lambda o: o.index))
    parsed: list[str] = []
    reader = _outcomes_seq._READERS[evens[0]]

    def counting(text: str) -> Any:
        parsed.append(text)
        return reader(text)

    monkeypatch.setitem(_outcomes_seq._READERS, evens[0], counting)
    reads: dict[str, Callable[[Outcomes], Iterable[Outcome]]] = {
        "in order": lambda o: list(o),
        "backwards": lambda o: list(reversed(o)),
        "by position": lambda o: [o[i] for i in range(len(o))],
        "with_status": lambda o: BulkReport(outcomes=o).accepted,
    }
    for how, read in reads.items():
        outcomes = Outcomes.collected([], [odds, evens])
        parsed.clear()
        assert tuple(read(outcomes)) in (expected, expected[::-1]), how
        assert len(parsed) == 2, how


@pytest.mark.anyio
async def test_a_hook_sees_each_accepted_answer_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``on_outcome`` (or the client's ``hooks=``) a unit accepted whole is built at
    once from the answer its request parsed, not parsed a second time from its text."""
    parsed: list[str] = []
    reader = _outcomes_seq._READERS["isms.json"]

    def counting(text: str) -> Any:
        parsed.append(text)
        return reader(text)

    monkeypatch.setitem(_outcomes_seq._READERS, "isms.json", counting)
    seen: list[Outcome] = []
    batch = [Sms(to=f"6012{i:07d}", text="hello", ref=i) for i in range(120)]
    async with make_client(transport=httpx.MockTransport(all_accepted)) as client:
        report = await client.send_sms_bulk(batch, on_outcome=seen.append)
    assert parsed == []  # the three units' answers were read by their requests only
    assert report.all_accepted
    assert sorted(seen, key=lambda o: o.index) == list(report.outcomes)
    assert [o.raw["sms_id"] for o in report.outcomes[:2]] == ["id-0", "id-1"]


def test_a_report_read_from_many_threads_at_once_reads_right() -> None:
    """A tuple is safe to share between threads (a web app's workers reading one report);
    so must the units kept built be, as readers evict them at the same time."""
    units, expected = [], []
    for first in range(0, 400, 10):
        unit, outcomes = compact_unit(list(range(first, first + 10)))
        units.append(unit)
        expected.extend(outcomes)
    shared = Outcomes.collected([], units)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(60):
                for position in range(0, 400, 7):
                    assert shared[position] == expected[position]
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        readers = [threading.Thread(target=read) for _ in range(8)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


def test_slices_backwards_zero_steps_and_reprs_as_a_tuple_gives_them() -> None:
    outcomes, expected = mixed()
    for cut in (slice(None, None, -1), slice(-2, 0, -2), slice(4, None, -3), slice(9, -9, -1)):
        assert outcomes[cut] == expected[cut]
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        outcomes[::0]
    assert list(reversed(outcomes)) == list(reversed(expected))
    assert outcomes.index(expected[4]) == 4
    assert outcomes.count(expected[4]) == 1
    with pytest.raises(ValueError):  # noqa: PT011 - Sequence.index's bare ValueError
        outcomes.index(outcome(99))
    assert repr(Outcomes()) == "Outcomes(())"
    assert not Outcomes()
    assert outcomes
    eleven = Outcomes.collected([], [compact_unit(list(range(11)))[0]])
    assert repr(eleven).endswith(", … 1 more))")
    assert repr(eleven).count("Outcome(") == 10


ODD_JSON = (
    '{"results": [{"dstno": "60120000000", "code": 2000, "sms_id": "a\\u00e9\\ud83d\\ude00",'
    ' "big": 123456789012345678901234567890, "f": 1e400, "g": 0.1, "neg": -0.0,'
    ' "dup": 1, "dup": 2}, {"dstno": "60120000001", "code": "2000", "sms_id": "b",'
    ' "nested": {"x": [1, 2.5, null, true]}}], "total_credits_used": 2}'
)


@pytest.mark.anyio
async def test_raw_read_back_is_what_the_answer_parsed_to_at_run_time() -> None:
    """Unicode escapes, big ints, floats out of range, duplicate keys: the ``raw`` a
    report builds again from the answer's text equals the one a hook got as it came."""
    seen: list[Outcome] = []
    batch = [Sms(to=f"6012{i:07d}", text="hello", ref=(i,)) for i in range(2)]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=ODD_JSON))
    async with make_client(transport=transport) as client:
        report = await client.send_sms_bulk(batch)
        await client.send_sms_bulk(batch, on_outcome=seen.append)
    expected = json.loads(ODD_JSON)["results"]
    assert [outcome.raw for outcome in report.outcomes] == expected
    assert [outcome.raw for outcome in sorted(seen, key=lambda o: o.index)] == expected
    assert report.outcomes == tuple(sorted(seen, key=lambda o: o.index))
    assert report.outcomes[0].message_id == "aé😀"
    assert report.outcomes[1].ref == (1,)
