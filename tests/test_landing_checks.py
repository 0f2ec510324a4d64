"""The landing asset's own gate: records Kafka retention deleted before they were landed are reported."""

import pytest
from dagster import AssetKey

from platform_assets import checks
from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import load_contracts

pytestmark = pytest.mark.unit

LANDING = AssetKey(["landing", "customers"])


def test_records_expired_before_landing_fail_a_check_naming_how_many_and_where():
    result = checks.expired_before_landing(LANDING, {"customer-create[0]": [10, 19], "customer-update[2]": [0, 4]})
    assert not result.passed
    assert result.metadata["expired_records"].value == 15
    for named in (
        "landing/customers",
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
