"""The classifier's rule, a pure function of a user's last act, last visit, open stream and followers."""

from __future__ import annotations

import pytest

from services.realtime.classes import DAY_MS, classify
from services.realtime.config import ClassifierConfig

NOW = 1_800_000_000_000
CONFIG = ClassifierConfig(active_days=7, inactive_days=30, celebrity_threshold=100)


def days_ago(days: float) -> int:
    return int(NOW - days * DAY_MS)


@pytest.mark.parametrize(("live", "act", "visit", "expected"), [
    (True, None, None, "LIVE"),
    (True, days_ago(40), days_ago(40), "LIVE"),
    (False, days_ago(6.9), None, "ACTIVE"),
    (False, days_ago(7), days_ago(1), "PASSIVE"),
    (False, None, days_ago(29), "PASSIVE"),
    (False, days_ago(29), None, "PASSIVE"),
    (False, days_ago(30), days_ago(30), "INACTIVE"),
    (False, None, None, "INACTIVE"),
], ids=["live", "live-long-gone", "acted-6.9d", "acted-7d-visited-1d", "visited-29d", "acted-29d",
        "gone-30d", "never-seen"])
def test_one_activity_class_per_user(live, act, visit, expected):
    assert classify(NOW, live, act, visit, False, CONFIG) == [expected]


def test_popular_goes_beside_the_activity_class():
    assert classify(NOW, False, days_ago(1), None, True, CONFIG) == ["ACTIVE", "POPULAR"]
