"""The parsers' event constructors (``events.new_report``, ``events.new_inbound``) build
exactly what attrs' ``__init__`` builds from the same values: equal, with the same repr,
frozen, and no field left unset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging_async.webhooks.events import (
    DeliveryReport,
    DeliveryStatus,
    WhatsAppInbound,
    new_inbound,
    new_report,
)

_text = st.none() | st.text(max_size=8)
_when = st.none() | st.datetimes(timezones=st.just(UTC))
_raw = st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3)


def _same(made: Any, expected: Any) -> None:
    assert made == expected
    assert repr(made) == repr(expected)
    assert attrs.asdict(made, recurse=False) == attrs.asdict(expected, recurse=False)
    for field in attrs.fields(type(made)):
        assert getattr(made, field.name) is getattr(expected, field.name)


@given(
    st.text(max_size=8),
    st.text(max_size=8),
    st.sampled_from(DeliveryStatus),
    _text,
    _text,
    _text,
    _when,
    _raw,
)
def test_new_report_is_the_attrs_report(
    gateway: str,
    message_id: str,
    status: DeliveryStatus,
    code: str | None,
    recipient: str | None,
    sender: str | None,
    timestamp: datetime | None,
    raw: dict[str, str],
) -> None:
    made = new_report(gateway, message_id, status, code, recipient, sender, timestamp, raw)
    expected = DeliveryReport(
        gateway=gateway,
        message_id=message_id,
        status=status,
        status_code=code,
        recipient=recipient,
        sender=sender,
        timestamp=timestamp,
        raw=raw,
    )
    _same(made, expected)


@given(_text, _text, _text, _text, _text, _text, _when, _raw)
def test_new_inbound_is_the_attrs_inbound(
    sender: str | None,
    recipient: str | None,
    message_id: str | None,
    kind: str | None,
    text: str | None,
    media_url: str | None,
    timestamp: datetime | None,
    raw: dict[str, str],
) -> None:
    made = new_inbound(sender, recipient, message_id, kind, text, media_url, timestamp, raw)
    expected = WhatsAppInbound(
        sender=sender,
        recipient=recipient,
        message_id=message_id,
        type=kind,
        text=text,
        media_url=media_url,
        timestamp=timestamp,
        raw=raw,
    )
    _same(made, expected)


def test_the_events_built_are_frozen_and_keep_text_out_of_their_repr() -> None:
    report = new_report("isms", "1", DeliveryStatus.DELIVERED, "DELIVRD", None, None, None, {})
    inbound = new_inbound("6012", None, "w1", "text", "a secret text", None, None, {})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        report.status = DeliveryStatus.FAILED  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        inbound.text = "changed"  # type: ignore[misc]
    assert "a secret text" not in repr(inbound)


def test_slot_setters_refuse_a_field_list_that_is_not_every_field_in_order() -> None:
    """A positional constructor (``new_report``, ``new_outcome``) whose field list fell
    behind its class would leave a slot unset: the list is refused when the module loads."""
    from messaging_async.models import slot_setters

    @attrs.frozen
    class Pair:
        first: int
        second: int

    setters = slot_setters(Pair, ("first", "second"))
    pair = object.__new__(Pair)
    for setter, value in zip(setters, (1, 2), strict=True):
        setter(pair, value)
    assert pair == Pair(1, 2)
    for wrong in (("second", "first"), ("first",), ("first", "second", "third")):
        with pytest.raises(AssertionError, match="Pair's fields"):
            slot_setters(Pair, wrong)
