"""`raw/<e>` materialized alone: quarantine is still written and recorded, raw's checks still run."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, materialize
from helpers import RECORDS_HOUR as HOUR
from helpers import good_and_bad_records

from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets

pytestmark = pytest.mark.broker


def test_raw_alone_writes_and_records_quarantine(broker, tmp_path):
    document, resources = good_and_bad_records(broker, tmp_path, "gadgets", {"max_quarantine_rate": 0.5})
    contract = parse_contract(document)
    instance = DagsterInstance.ephemeral()
    assert materialize([build_landing_asset(contract)], instance=instance, resources=resources).success

    raw_key, quarantine_key = AssetKey(["raw", "raw_gadgets"]), AssetKey(["quarantine", "quarantine_gadgets"])
    result = materialize(
        [build_raw_assets(contract)], instance=instance, resources=resources, partition_key=HOUR, selection=[raw_key]
    )
    assert result.success
    planned = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert {entry.dagster_event.asset_key for entry in planned} == {raw_key}
    assert {m.asset_key for m in result.asset_materializations_for_node("raw_gadgets")} == {raw_key, quarantine_key}
    # raw's checks ran as part of the subset.
    assert {e.check_name for e in result.get_asset_check_evaluations()} >= {"valid_changes", "quarantine_rate"}

    lake = resources["lake"]
    assert [row["id"] for row in lake.read("raw", "gadgets").to_pylist()] == ["a"]
    [quarantined] = lake.read("quarantine", "gadgets").to_pylist()
    assert quarantined["key"] == b"b"
    # Quarantine's materialization is recorded for the hour, by the same run, with its metadata.
    event = instance.get_latest_materialization_event(quarantine_key)
    assert event is not None and event.run_id == result.run_id
    assert event.asset_materialization.partition == HOUR
    assert event.asset_materialization.metadata["dagster/row_count"].value == 1
    assert instance.get_materialized_partitions(quarantine_key) == {HOUR}
