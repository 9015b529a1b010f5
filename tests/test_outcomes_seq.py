"""``BulkReport.outcomes`` as an ``Outcomes`` sequence (issue 17, fourth pass).

The compact form of an iSMS unit accepted whole gives, once read, exactly the outcomes the
general road builds for the same answer (``raw`` included), and the sequence behaves as
the tuple it replaced wherever its docstring says it does, whatever order and shape the
units came in.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging_async import BulkReport, OutcomeStatus
from messaging_async._outcomes_seq import Outcomes, expand
from messaging_async._secrets import Redactor
from messaging_async.isms import _outcomes, _wire
from messaging_async.models import Outcome

REDACT = Redactor(("p",))


def general_road(recipients: list[tuple[int, str, Any]], text: str) -> list[Outcome]:
    """The outcomes main built for an answer: match the results, then one each."""
    results = _wire.parse_json_send(text).results
    assert results is not None
    matched = _outcomes.match_results([number for _, number, _ in recipients], results)
    return [
        _outcomes.result_outcome(index, number, ref, result, REDACT)
        for (index, number, ref), result in zip(recipients, matched, strict=True)
    ]


def same(compact: list[Outcome], general: list[Outcome]) -> None:
    """Equal, and field by field (``error`` is outside ``==``)."""
    assert compact == general
    for one, other in zip(compact, general, strict=True):
        assert attrs.asdict(one, recurse=False) == attrs.asdict(other, recurse=False)


numbers = st.from_regex(r"601[0-9]{8,9}", fullmatch=True)
refs = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.tuples(st.integers()))
ids = st.text(min_size=1, max_size=12)
extras = st.dictionaries(
    st.sampled_from(["status", "msg", "credits", "x"]),
    st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2)),
    max_size=3,
)


@st.composite
def accepted_answers(draw: st.DrawFn) -> tuple[list[tuple[int, str, Any]], str]:
    """A unit and an answer accepting every recipient, in the shapes iSMS writes it."""
    count = draw(st.integers(1, 50))
    first = draw(st.integers(0, 10_000))
    recipients = [(first + i, draw(numbers), draw(refs)) for i in range(count)]
    results = []
    for _, number, _ in recipients:
        result: dict[str, Any] = {"dstno": number, "code": draw(st.sampled_from([2000, "2000"]))}
        id_key = draw(st.sampled_from(["sms_id", "trx_id", "both"]))
        if id_key in ("sms_id", "both"):  # with a trx_id too, an empty sms_id gives way
            result["sms_id"] = draw(ids) if id_key == "sms_id" else draw(st.just("") | ids)
        if id_key in ("trx_id", "both"):
            result["trx_id"] = draw(ids)
        result.update(draw(extras))
        results.append(result)
    body: dict[str, Any] = {"results": results}
    if draw(st.booleans()):
        body["total_credits_used"] = draw(st.integers(0, 100))
    return recipients, json.dumps(body, ensure_ascii=draw(st.booleans()))


@given(accepted_answers())
def test_a_compact_unit_reads_back_as_the_general_road_builds_it(
    unit: tuple[list[tuple[int, str, Any]], str],
) -> None:
    recipients, text = unit
    parsed = _wire.parse_json_send(text)
    compact = _outcomes.accepted_unit(recipients, parsed, text)
    assert compact is not None
    general = general_road(recipients, text)
    same(expand(compact), general)  # raw parsed again from the text: a report's read
    same(expand(compact, parsed.results), general)  # raw as parsed: hooks, streams, ledger


@given(accepted_answers(), st.data())
def test_an_answer_not_accepted_whole_is_never_made_compact(
    unit: tuple[list[tuple[int, str, Any]], str], data: st.DataObject
) -> None:
    recipients, text = unit
    results = json.loads(text)["results"]
    spoil = data.draw(st.integers(0, len(results) - 1))
    how = data.draw(st.sampled_from(["code", "id", "number", "drop", "not-a-dict"]))
    if how == "code":
        results[spoil]["code"] = data.draw(st.sampled_from([-1008, "-1004", None, 2001]))
    elif how == "id":
        results[spoil].pop("sms_id", None)
        results[spoil]["trx_id"] = data.draw(st.sampled_from([None, 17, 1.5]))
    elif how == "number":
        results[spoil]["dstno"] = "+" + results[spoil]["dstno"]
    elif how == "drop":
        del results[spoil]
    else:
        results[spoil] = "2000"
    text = json.dumps({"results": results})
    assert _outcomes.accepted_unit(recipients, _wire.parse_json_send(text), text) is None


def outcome(index: int, status: OutcomeStatus = OutcomeStatus.REJECTED) -> Outcome:
    return Outcome(to=f"6012{index:07d}", status=status, index=index, reason="r", ref=index)


def compact_unit(indices: list[int]) -> tuple[Any, list[Outcome]]:
    """An ``Accepted`` unit over ``indices`` and the outcomes it stands for."""
    recipients = [(i, f"6019{i:07d}", f"ref-{i}") for i in indices]
    results = [{"dstno": n, "code": 2000, "sms_id": f"id-{i}"} for i, n, _ in recipients]
    text = json.dumps({"results": results})
    unit = _outcomes.accepted_unit(recipients, _wire.parse_json_send(text), text)
    assert unit is not None
    return unit, general_road(recipients, text)


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[Outcome], list[Any], tuple[Outcome, ...]]:
    """A run's recorded outcomes and compact units, in the order units might finish, and
    the tuple main's report held: every index once, units in index order within."""
    count = draw(st.integers(0, 300))
    shuffle = random.Random(draw(st.integers(0, 2**32))).shuffle
    buckets = draw(st.integers(1, 6))
    rare_share = draw(st.sampled_from([0.0, 0.02, 0.3, 1.0]))
    placed: dict[int, list[int]] = {}
    rare: list[Outcome] = []
    for index in range(count):
        if draw(st.floats(0, 1)) < rare_share:
            rare.append(outcome(index, draw(st.sampled_from(list(OutcomeStatus)))))
        else:  # units form in input order: a bucket takes indices in order
            placed.setdefault(draw(st.integers(0, buckets - 1)), []).append(index)
    units, everything = [], list(rare)
    for indices in placed.values():
        for start in range(0, len(indices), 50):
            unit, outcomes = compact_unit(indices[start : start + 50])
            units.append(unit)
            everything.extend(outcomes)
    shuffle(rare)
    shuffle(units)
    return rare, units, tuple(sorted(everything, key=lambda o: o.index))


@given(runs(), st.data())
def test_the_sequence_behaves_as_the_tuple_main_built(
    run: tuple[list[Outcome], list[Any], tuple[Outcome, ...]], data: st.DataObject
) -> None:
    rare, units, expected = run
    outcomes = Outcomes.collected(rare, units)
    assert len(outcomes) == len(expected)
    assert list(outcomes) == list(expected)
    assert outcomes == expected
    assert expected == outcomes
    assert outcomes == Outcomes.of(expected)
    assert not outcomes != expected  # noqa: SIM202 - ``!=`` itself is under test
    try:
        hashed = hash(expected)
    except TypeError:  # a ``raw`` dict is unhashable: so is the tuple, so is this
        with pytest.raises(TypeError):
            hash(outcomes)
    else:
        assert hash(outcomes) == hashed
    if expected:
        position = data.draw(st.integers(-len(expected), len(expected) - 1))
        assert outcomes[position] == expected[position]
    window = data.draw(st.tuples(st.integers(-400, 400), st.integers(-400, 400), st.integers(1, 3)))
    cut = slice(window[0], window[1], window[2])
    assert outcomes[cut] == expected[cut]
    for position in (len(expected), -len(expected) - 1):
        with pytest.raises(IndexError):
            outcomes[position]
    report = BulkReport(outcomes=outcomes)
    counts = {s.value: sum(o.status is s for o in expected) for s in OutcomeStatus}
    assert report.counts == counts
    assert report == BulkReport(outcomes=expected)
    assert report.accepted == tuple(o for o in expected if o.ok)
    assert report.all_accepted is (counts["accepted"] == len(expected))


def test_a_tuple_given_to_bulk_report_is_kept_as_outcomes_and_compares_equal() -> None:
    outcomes = (outcome(0), outcome(1, OutcomeStatus.ACCEPTED))
    report = BulkReport(outcomes=outcomes, credits_used=Decimal(1))
    assert isinstance(report.outcomes, Outcomes)
    assert report.outcomes == outcomes
    assert report.outcomes[1:] == outcomes[1:]
    assert report.counts["accepted"] == 1
    assert not isinstance(report.outcomes, tuple)
    assert outcomes[0] in report.outcomes
    assert (report.outcomes == [*outcomes]) is False  # like a tuple: a list is not equal


def test_a_large_report_repr_is_bounded() -> None:
    unit, _ = compact_unit(list(range(50)))
    report = BulkReport(outcomes=Outcomes.collected([], [unit] * 1))
    assert repr(report).count("Outcome(") == 10
    assert "… 40 more" in repr(report)
    one = BulkReport(outcomes=(outcome(0),))
    assert repr(one.outcomes) == f"Outcomes(({outcome(0)!r},))"
