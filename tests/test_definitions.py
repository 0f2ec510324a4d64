"""Snapshot of the code location: one chain per contract, jobs, checks, sensors and schedules."""

from datetime import UTC, datetime

import pytest
import yaml
from dagster import AssetKey, TimeWindowPartitionMapping, build_schedule_context

from platform_assets.definitions import build_definitions, defs
from platform_assets.lib.contract import load_contracts
from platform_assets.schedules import daily_schedule

pytestmark = pytest.mark.unit


def keys(definitions) -> set[str]:
    return {key.to_user_string() for key in definitions.resolve_asset_graph().get_all_asset_keys()}


def test_every_contract_has_its_whole_chain_and_the_marts_depend_on_them():
    asset_keys = keys(defs)
    for entity in ("customers", "card_transactions"):
        for layer in ("landing", "raw", "quarantine", "current", "history"):
            assert f"{layer}/{layer}_{entity}" in asset_keys
    assert {"marts/customer_kpis_daily", "marts/card_spend_hourly", "marts/card_spend_daily_by_city"} <= asset_keys
    graph = defs.resolve_asset_graph()
    upstream = graph.get(AssetKey(["marts", "customer_kpis_daily"])).parent_keys
    assert AssetKey(["staging", "stg_customers_daily"]) in upstream
    staging = graph.get(AssetKey(["staging", "stg_customers_daily"])).parent_keys
    assert AssetKey(["history", "history_customers"]) in staging
    # Lineage reaches back from the marts to the contracts' Kafka topics.
    assert graph.get(AssetKey(["landing", "landing_customers"])).parent_keys == {
        AssetKey(["kafka", t]) for t in ("customer-create", "customer-update", "customer-delete")
    }
    assert AssetKey(["kafka", "customer-update"]) in graph.get_ancestor_asset_keys(
        AssetKey(["marts", "customer_kpis_daily"])
    )
    assert AssetKey(["kafka", "card-transactions"]) in graph.get_ancestor_asset_keys(
        AssetKey(["marts", "card_spend_daily_by_city"])
    )


def test_every_lineage_node_reads_its_layer_and_entity_in_full():
    """The graph shows only a key's last component, cut in the middle beyond 31 characters: each must be
    unique, whole and start with its layer."""
    labels = [key.path[-1] for key in defs.resolve_asset_graph().get_all_asset_keys()]
    assert len(labels) == len(set(labels)), "two nodes would read the same"
    assert all(len(label) <= 31 for label in labels), [label for label in labels if len(label) > 31]
    entity_layers = ("landing", "raw", "quarantine", "current", "history", "scd2", "snapshot")
    entity_keys = [key for key in defs.resolve_asset_graph().get_all_asset_keys() if key.path[0] in entity_layers]
    assert len(entity_keys) >= 2 * (len(entity_layers) - 1)  # two entities; one has a snapshot
    assert all(key.path[-1].startswith(f"{key.path[0]}_") for key in entity_keys), entity_keys


def test_adding_a_contract_adds_a_chain_without_code(tmp_path):
    document = {
        "name": "accounts",
        "owner": "ledger",
        "source": {"format": "debezium", "topic": "ledger.public.accounts"},
        "key": ["account_id"],
        "sequence": "version",
        "event_time": "changed_at",
        "fields": {"account_id": {}, "changed_at": {"type": "timestamp"}, "version": {"type": "long"}},
    }
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump(document))
    contracts = load_contracts() + load_contracts(tmp_path)
    extended = build_definitions(contracts)
    layers = ("landing", "raw", "quarantine", "current", "history")
    assert {f"{layer}/{layer}_accounts" for layer in layers} <= keys(extended)
    assert {"lag_sensor_accounts", "history_sensor_accounts"} <= {s.name for s in extended.sensors}
    owners = (
        extended.resolve_assets_def(AssetKey(["current", "current_accounts"]))
        .specs_by_key[AssetKey(["current", "current_accounts"])]
        .owners
    )
    assert owners == ["team:ledger"]


def test_checks_are_blocking_and_jobs_and_schedules_exist():
    graph = defs.resolve_asset_graph()
    blocking = {
        (k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys if graph.get_check_spec(k).blocking
    }
    assert ("raw/raw_customers", "valid_changes") in blocking
    assert ("raw/raw_customers", "quarantine_rate") in blocking
    assert ("current/current_customers", "unique_key") in blocking
    assert ("history/history_customers", "one_row_per_key_per_day") in blocking
    assert ("raw/raw_customers", "row_count_sanity") in blocking and ("raw/raw_customers", "freshness") in blocking
    warnings = {("raw/raw_customers", "unknown_fields"), ("raw/raw_card_transactions", "unknown_fields")}
    every_check = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert blocking == every_check - warnings, "every check blocks but the schema-drift warning"
    assert not any(graph.get_check_spec(k).blocking for k in graph.asset_check_keys if k.name == "unknown_fields")
    assert any(name.startswith("marts/") for name, _ in blocking), "dbt tests are blocking asset checks"
    assert {"landing_job", "hourly_job", "daily_job"} <= {j.name for j in defs.jobs}


def test_the_daily_schedule_requests_the_closed_day_behind_manual_runs():
    tick = datetime(2026, 3, 4, 5, 10, tzinfo=UTC)
    request = daily_schedule(build_schedule_context(scheduled_execution_time=tick))
    assert request.partition_key == "2026-03-03"
    assert request.tags["dagster/priority"] == "-1"


def test_one_automation_story_sensors_and_the_daily_schedule():
    """Runs start from sensors (landing, the touched hours, the changed days) and one daily schedule;
    no asset carries an automation condition that Dagster's (stopped) automation sensor would own."""
    graph = defs.resolve_asset_graph()
    conditions = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).automation_condition}
    assert conditions == set()
    assert sorted(s.name for s in defs.schedules) == ["daily_schedule", "maintenance_schedule"], (
        "one schedule for data; the other is table upkeep"
    )
    sensors = {s.name for s in defs.sensors}
    assert {"lag_sensor_customers", "history_sensor_customers", "erasure_marts_sensor"} <= sensors
    assert not any(name.startswith("default_automation_condition_sensor") for name in sensors)


def test_marts_carry_owner_description_and_column_schema():
    key = AssetKey(["marts", "customer_kpis_daily"])
    spec = defs.resolve_assets_def(key).specs_by_key[key]
    assert spec.owners == ["team:analytics"]
    assert spec.description.startswith("Customer KPIs per day")
    columns = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
    assert columns["active_customers"] == "Customers alive at the end of the day."


def test_declared_types_and_freshness_checks():
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from platform_assets import checks

    key = AssetKey(["raw", "raw_things"])
    declared = pa.schema([("id", pa.string()), ("v", pa.int64())])
    assert checks.declared_types(key, "h", declared, declared).passed
    drifted = checks.declared_types(key, "h", pa.schema([("id", pa.string()), ("v", pa.string())]), declared)
    assert not drifted.passed and "v" in drifted.description and "rebuild" in drifted.description
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    stale = checks.freshness(key, "h", now - timedelta(hours=5), now, 2, latest=True)
    assert not stale.passed and "5.0 h old" in stale.description
    assert checks.freshness(key, "h", now - timedelta(hours=1), now, 2, latest=True).passed
    assert checks.freshness(key, "h", now - timedelta(days=90), now, 2, latest=False).passed  # a backfill


def test_history_days_depend_on_the_day_before():
    graph = defs.resolve_asset_graph()
    history = AssetKey(["history", "history_customers"])
    assert graph.get(history).parent_keys == {AssetKey(["current", "current_customers"]), history}
    mapping = graph.get_partition_mapping(history, history)
    assert isinstance(mapping, TimeWindowPartitionMapping)
    assert (mapping.start_offset, mapping.end_offset) == (-1, -1)


def test_alert_sensors_exist_only_with_a_webhook():
    from platform_assets.settings import PlatformSettings

    assert not {"alert_on_run_failure", "alert_on_check_failure"} & {s.name for s in defs.sensors}
    settings = PlatformSettings.from_env(
        {"PLATFORM_ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x", "PLATFORM_UI_URL": "https://dagster.x"}
    )
    alerting = build_definitions(load_contracts(), settings=settings)
    assert {"alert_on_run_failure", "alert_on_check_failure"} <= {s.name for s in alerting.sensors}
