"""The landing asset's own gate: records Kafka retention deleted before they were landed are reported."""

import pyarrow as pa
import pytest
from dagster import AssetKey

from platform_assets import checks
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import load_contracts
from platform_assets.lib.records import LANDING_POSITION_COLUMNS

pytestmark = pytest.mark.unit

LANDING = AssetKey(["landing", "landing_customers"])


def test_records_expired_before_landing_fail_a_check_naming_how_many_and_where():
    result = checks.expired_before_landing(LANDING, {"customer-create[0]": [10, 19], "customer-update[2]": [0, 4]})
    assert not result.passed
    assert result.metadata["expired_records"].value == 15
    for named in (
        "landing/landing_customers",
        "15 records",
        "customer-create[0] offsets 10..19",
        "customer-update[2] offsets 0..4",
    ):
        assert named in (result.description or "")
    assert "retention" in (result.description or "")


def test_nothing_expired_passes():
    assert checks.expired_before_landing(LANDING, {}).passed


def test_every_landing_asset_declares_the_blocking_check():
    customers = next(contract for contract in load_contracts() if contract.name == "customers")
    [spec] = build_landing_asset(customers).check_specs
    assert spec.name == checks.NOTHING_EXPIRED_BEFORE_LANDING and spec.blocking


RAW = AssetKey(["raw", "raw_customers"])


def positions(rows: list[tuple[str, int, int]]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(LANDING_POSITION_COLUMNS, row, strict=True)) for row in rows])


LANDED = positions([("t", 0, offset) for offset in range(6)])


def test_every_landed_record_of_a_partition_is_in_raw_or_quarantine_or_counted():
    stored = positions([("t", 0, 0), ("t", 0, 1), ("t", 0, 3), ("t", 0, 4)])
    assert checks.every_record_accounted(RAW, "2026-01-01-10:00", LANDED, stored, set_aside=2).passed


def test_a_landed_record_found_nowhere_fails_the_reconciliation():
    stored = positions([("t", 0, 0), ("t", 0, 1), ("t", 0, 3)])
    result = checks.every_record_accounted(RAW, "2026-01-01-10:00", LANDED, stored, set_aside=2)
    assert not result.passed
    assert "raw/raw_customers partition 2026-01-01-10:00" in (result.description or "")
    assert "1 of 6 landed records" in (result.description or "")


def test_a_record_stored_twice_or_not_landed_here_fails_the_reconciliation():
    doubled = pa.concat_tables([LANDED, positions([("t", 0, 2)])])
    result = checks.every_record_accounted(RAW, "2026-01-01-10:00", LANDED, doubled, set_aside=0)
    assert not result.passed and "t[0]@2" in (result.description or "")
    stray = pa.concat_tables([LANDED, positions([("t", 0, 99)])])
    result = checks.every_record_accounted(RAW, "2026-01-01-10:00", LANDED, stray, set_aside=0)
    assert not result.passed and "t[0]@99" in (result.description or "")


def test_the_reconciliation_names_the_first_positions_in_topic_order_over_several_topics():
    """Topics are compared by number (see `every_record_accounted`): the names and order are the topics'."""
    landed = positions([("b-topic", 1, 7), ("a-topic", 0, 3), ("b-topic", 0, 9)])
    stray = positions(
        [
            ("c-topic", 0, 1),
            ("b-topic", 1, 7),
            ("a-topic", 0, 3),
            ("b-topic", 0, 9),
            ("a-topic", 2, 5),
            ("b-topic", 3, 1),
        ]
    )
    result = checks.every_record_accounted(RAW, "2026-01-01-10:00", landed, stray, set_aside=0)
    assert not result.passed
    assert "3 stored rows were not landed under this partition (a-topic[2]@5, b-topic[3]@1, c-topic[0]@1)" in (
        result.description or ""
    )
    missing = checks.every_record_accounted(RAW, "2026-01-01-10:00", landed, stray.slice(0, 3), set_aside=0)
    assert "1 of 3 landed records are in neither raw nor quarantine" in (missing.description or "")
    empty = positions([("t", 0, 0)]).slice(0, 0)
    assert checks.every_record_accounted(RAW, "2026-01-01-10:00", empty, empty, set_aside=0).passed
