"""Models and the retry policy: frozen, text kept out of reprs, counts right."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from messaging_async import BulkReport, Outcome, OutcomeStatus, RetryPolicy, Sms


def test_sms_is_frozen_and_hides_its_text() -> None:
    sms = Sms(to="60123456789", text="Your OTP is 482910", ref="row-1")
    assert "482910" not in repr(sms)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        sms.text = "changed"  # type: ignore[misc]


def test_bulk_report_counts_and_filters() -> None:
    outcomes = (
        Outcome(to="1", status=OutcomeStatus.ACCEPTED, index=0, message_id="a"),
        Outcome(to="2", status=OutcomeStatus.REJECTED, index=1, code=-1008),
        Outcome(to="3", status=OutcomeStatus.NOT_SENT, index=2),
        Outcome(to="4", status=OutcomeStatus.ACCEPTED, index=3, message_id="b"),
    )
    report = BulkReport(outcomes=outcomes, credits_used=Decimal(2))
    assert report.counts == {
        OutcomeStatus.ACCEPTED: 2,
        OutcomeStatus.REJECTED: 1,
        OutcomeStatus.NOT_SENT: 1,
        OutcomeStatus.UNKNOWN: 0,
    }
    assert [outcome.to for outcome in report.accepted] == ["1", "4"]
    assert report.not_sent[0].safe_to_resend
    assert not report.accepted[0].safe_to_resend
    assert len(report) == 4
    assert not report.all_accepted


def test_retry_policy_backoff_is_bounded_and_switchable() -> None:
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=4.0)
    assert all(0.0 <= policy.backoff(round_number) <= 4.0 for round_number in range(1, 10))
    assert policy.backoff(1, retry_after=7.0) == 7.0
    assert RetryPolicy.no_wait().backoff(5, retry_after=30.0) == 0.0
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
