"""The invariant checker itself: it must catch every way an outcome can lie."""

from __future__ import annotations

import anyio
import attrs
import pytest

from messaging_async import Outcome, OutcomeStatus, Sms
from messaging_async.testing import FakeGateway, Fault, SentMessage, reconcile

BATCH = [Sms(to=f"6012{n:07d}", text=f"Hi {n}, parcel ready") for n in range(4)]


@pytest.fixture
def honest() -> tuple[list[Outcome], list[SentMessage]]:
    """A real run against the sandbox: every outcome true."""
    fake = FakeGateway()

    async def run() -> list[Outcome]:
        async with fake.isms_client() as isms:
            report = await isms.send_sms_bulk(BATCH)
        assert report.all_accepted
        return list(report.outcomes)

    return anyio.run(run), fake.sent


def test_a_true_run_passes(honest: tuple[list[Outcome], list[SentMessage]]) -> None:
    outcomes, sent = honest
    assert reconcile(BATCH, outcomes, sent).check() == {"accepted": 4}


def test_swapped_message_ids_fail(honest: tuple[list[Outcome], list[SentMessage]]) -> None:
    outcomes, sent = honest
    first, second = outcomes[0], outcomes[1]
    outcomes[0] = attrs.evolve(first, message_id=second.message_id)
    outcomes[1] = attrs.evolve(second, message_id=first.message_id)
    found = reconcile(BATCH, outcomes, sent)
    assert len(found.mismatches) == 2
    with pytest.raises(AssertionError, match="mismatches 2"):
        found.check()


def test_a_truncated_message_id_fails(honest: tuple[list[Outcome], list[SentMessage]]) -> None:
    outcomes, sent = honest
    outcomes[2] = attrs.evolve(outcomes[2], message_id=(outcomes[2].message_id or "")[:2])
    assert reconcile(BATCH, outcomes, sent).mismatches == (
        f"#2 accepted with id '11', the gateway's is {sent[2].message_id!r}",
    )


def test_swapped_numbers_fail(honest: tuple[list[Outcome], list[SentMessage]]) -> None:
    outcomes, sent = honest
    outcomes[0], outcomes[1] = (
        attrs.evolve(outcomes[0], to=outcomes[1].to),
        attrs.evolve(outcomes[1], to=outcomes[0].to),
    )
    assert len(reconcile(BATCH, outcomes, sent).mismatches) == 2


def test_wrong_statuses_fail(honest: tuple[list[Outcome], list[SentMessage]]) -> None:
    outcomes, sent = honest
    outcomes[0] = attrs.evolve(outcomes[0], status=OutcomeStatus.NOT_SENT)  # it was sent
    outcomes[1] = attrs.evolve(outcomes[1], status=OutcomeStatus.REJECTED)
    outcomes[2] = attrs.evolve(outcomes[2], status=OutcomeStatus.UNKNOWN)  # allowed: ≤ once
    found = reconcile(BATCH, outcomes, sent)
    assert [line.split(" but ")[0] for line in found.mismatches] == ["#0 not_sent", "#1 rejected"]


def test_an_accepted_outcome_the_gateway_never_recorded_fails(
    honest: tuple[list[Outcome], list[SentMessage]],
) -> None:
    outcomes, sent = honest
    assert reconcile(BATCH, outcomes, sent[1:]).mismatches == (
        "#0 accepted but the gateway recorded it 0 times",
    )


def test_missing_extra_and_duplicate_outcomes_are_unaccounted(
    honest: tuple[list[Outcome], list[SentMessage]],
) -> None:
    outcomes, sent = honest
    assert reconcile(BATCH, outcomes[1:], sent).unaccounted == 1
    assert reconcile(BATCH, [*outcomes, outcomes[3]], sent).unaccounted == 1
    assert reconcile(BATCH, outcomes, sent, read=3).unaccounted == 1  # #3 was never read
    assert reconcile(BATCH, outcomes, [*sent, sent[0]]).duplicates == 1


async def test_unknown_and_rejected_outcomes_of_a_faulty_run_pass() -> None:
    fake = FakeGateway()
    fake.inject(Fault.RESET, endpoint="isms_send_json.php")
    batch = [*BATCH, Sms(to="0123", text="Hi nobody")]
    async with fake.isms_client() as isms:
        report = await isms.send_sms_bulk(batch)
    counts = reconcile(batch, report.outcomes, fake.sent).check()
    assert counts == {"unknown": 4, "rejected": 1}
