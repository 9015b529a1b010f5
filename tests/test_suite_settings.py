"""The suite's own settings that keep it green on a loaded CI machine (tests/conftest.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def test_no_property_has_a_wall_clock_deadline_or_a_too_slow_health_check() -> None:
    """A property that sets neither (tests/test_webhook_deadline.py's one-pass reading,
    say) would otherwise fail when a loaded machine makes one example take 200 ms."""
    active = settings.default
    assert active is not None
    assert active.deadline is None
    assert HealthCheck.too_slow in active.suppress_health_check
