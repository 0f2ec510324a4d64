"""The judgement of the freshness and row-count checks (their blocking is in test_definitions)."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetKey

from platform_assets import checks

pytestmark = pytest.mark.unit

RAW = AssetKey(["raw", "raw_customers"])
NOW = datetime(2026, 11, 24, 12, 30, tzinfo=UTC)


def test_freshness_judges_only_the_latest_partition_of_a_contract_that_sets_a_limit():
    stale = NOW - timedelta(hours=5)
    failed = checks.freshness(RAW, "2026-11-24-11:00", stale, NOW, limit_hours=2, latest=True)
    assert not failed.passed
    expected = "raw/raw_customers partition 2026-11-24-11:00: the newest record is 5.0 h old, above 2 h"
    assert expected in failed.description
    assert checks.freshness(RAW, "2026-11-24-11:00", None, NOW, limit_hours=2, latest=True).passed is False
    assert checks.freshness(RAW, "2026-11-24-11:00", NOW - timedelta(hours=1), NOW, 2, latest=True).passed
    assert checks.freshness(RAW, "2026-01-01-00:00", stale, NOW, limit_hours=2, latest=False).passed  # a backfill
    assert checks.freshness(RAW, "2026-11-24-11:00", stale, NOW, limit_hours=None, latest=True).passed


def test_row_count_sanity_compares_with_the_previous_partition_when_the_contract_sets_a_limit():
    assert not checks.row_count_sanity(RAW, "h", rows=100, previous=10, max_change=0.5).passed
    assert checks.row_count_sanity(RAW, "h", rows=14, previous=10, max_change=0.5).passed
    assert checks.row_count_sanity(RAW, "h", rows=100, previous=None, max_change=0.5).passed  # nothing to compare
    assert checks.row_count_sanity(RAW, "h", rows=100, previous=10, max_change=None).passed


def test_a_rule_that_is_off_shows_no_limit():
    """`max_change 0` or `limit_hours 0` would read as the strictest limit, not as "not judged"."""
    off = checks.row_count_sanity(RAW, "h", rows=100, previous=10, max_change=None).metadata
    assert "max_change" not in off and off["judged"].value is False
    on = checks.row_count_sanity(RAW, "h", rows=100, previous=10, max_change=0.5).metadata
    assert on["max_change"].value == 0.5 and on["judged"].value is True
    unlimited = checks.freshness(RAW, "h", NOW, NOW, limit_hours=None, latest=True).metadata
    assert "limit_hours" not in unlimited and unlimited["judged"].value is False
    assert checks.freshness(RAW, "h", NOW, NOW, limit_hours=2, latest=True).metadata["limit_hours"].value == 2
