"""A ref that has no truth value and compares as itself (``pandas.NA``, say, as a row of a
DataFrame gives it): the ledger cannot key it, so its recipient is refused as any
unkeyable ref is (``REF_REFUSED``), and the rest of its unit is claimed as usual. Reading
such refs with ``==`` (``list.count(None)``) raised ``TypeError`` instead: the whole
unit's claim failed, in every store."""

from __future__ import annotations

from typing import Any

import pytest

from messaging_async import OutcomeStatus

from .conftest import LedgerFactory, sms_entries

pytestmark = pytest.mark.anyio


class _NotAvailable:
    """Like ``pandas.NA``: ``==`` answers itself, and it has no truth value."""

    def __eq__(self, other: object) -> Any:
        return self

    def __ne__(self, other: object) -> Any:
        return self

    def __bool__(self) -> bool:
        raise TypeError("boolean value of NA is ambiguous")

    __hash__ = object.__hash__


@pytest.mark.parametrize("one_trip", [True, False], ids=["plan_and_begin_unit", "plan"])
async def test_a_ref_with_no_truth_value_is_refused_alone(
    make_ledger: LedgerFactory, one_trip: bool
) -> None:
    odd = _NotAvailable()
    entries = sms_entries(5)
    entries[2] = entries[2]._replace(ref=odd)
    async with make_ledger() as ledger:
        await ledger.open_job("j", gateway="isms")
        both = getattr(ledger, "plan_and_begin_unit", None)  # the journal's road, where given
        if one_trip and both is not None:
            plan = await both("j", entries, resend_unknown=False, expect_reports=True)
        else:
            plan = await ledger.plan("j", entries, resend_unknown=False)
        await ledger.close_job("j")
    assert [entry.position for entry in plan.send] == [0, 1, 3, 4]
    (refused,) = plan.outcomes
    assert (refused.index, refused.status) == (2, OutcomeStatus.REJECTED)
    assert refused.ref is odd  # the caller's own ref back on its outcome
