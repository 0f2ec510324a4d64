"""Quality gates: a bad partition stops everything downstream and leaves the published marts as they
were; a good partition flows through to published marts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, SkipReason, build_sensor_context
from helpers import mart_rows, run

from platform_assets.definitions import build_definitions
from platform_assets.entity import asset_key
from simulator.source import Rates

pytestmark = [pytest.mark.broker, pytest.mark.spark, pytest.mark.dbt]

DAY_ONE = datetime(2026, 1, 1, tzinfo=UTC)
DAY_TWO = DAY_ONE + timedelta(days=1)


@pytest.fixture(scope="module")
def stack(platform_stack):
    return platform_stack(Rates(creates=4, updates=4, deletes=0, transactions=8, late_share=0), seed=3)


def materialized(instance, key: AssetKey, run_id: str) -> bool:
    return any(r.run_id == run_id for r in instance.fetch_materializations(key, limit=100).records)


MARTS = ("customer_kpis_daily", "card_spend_hourly", "card_spend_daily_by_city")


def build_tables(lake) -> list[Path]:
    """What runs left in the private build location of the marts."""
    builds = Path(lake.uri("marts", "_builds"))
    return list(builds.iterdir()) if builds.exists() else []


def published_versions(lake) -> dict[str, int | None]:
    """The Delta version of every published mart: a publish (or any other write) makes a new one."""
    return {mart: lake.version("marts", mart) for mart in MARTS}


def test_a_good_day_flows_through_to_published_marts(stack):
    for hour in range(24):
        stack.publish(stack.source.hour(DAY_ONE + timedelta(hours=hour)))
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success
    assert run(stack.defs, stack.instance, "hourly_job", "2026-01-01-00:00", "2026-01-01-23:00").success
    assert run(stack.defs, stack.instance, "daily_job", "2026-01-01", "2026-01-01").success
    kpis = mart_rows(stack.lake, "customer_kpis_daily", "select day, active_customers from marts")
    assert kpis == [(DAY_ONE.date(), len(stack.source.customers))]
    # Each mart is a Delta table in the lake, partitioned by day where it has one.
    assert stack.lake.table("marts", "customer_kpis_daily").metadata().partition_columns == ["day"]
    assert stack.lake.table("marts", "card_spend_daily_by_city").metadata().partition_columns == ["day"]
    assert stack.lake.table("marts", "card_spend_hourly").metadata().partition_columns == []
    assert not build_tables(stack.lake), "the published run's build tables were not removed"


def test_a_bad_partition_stops_downstream_and_leaves_published_marts_untouched(stack):
    before = published_versions(stack.lake)
    events = stack.source.hour(DAY_TWO + timedelta(hours=3))
    bad = next(e for e in events if e.topic == "card-transactions")
    refund = dataclasses.replace(
        bad, key="T-NEGATIVE", value={**bad.value, "transaction_id": "T-NEGATIVE", "amount": -40.0}
    )
    stack.publish([*events, refund])
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success

    hourly = run(stack.defs, stack.instance, "hourly_job", "2026-01-02-03:00", "2026-01-02-03:00")
    assert not hourly.success
    checks = {
        (e.asset_check_evaluation_data.asset_key.to_user_string(), e.asset_check_evaluation_data.check_name): (
            e.asset_check_evaluation_data
        )
        for e in hourly.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    }
    failed = checks[("raw/raw_card_transactions", "valid_changes")]
    assert not failed.passed
    assert "raw/raw_card_transactions partition 2026-01-02-03:00" in failed.description
    assert "expect_column_values_to_be_between" in failed.description and "1 of" in failed.description
    # Every asset downstream of the failed check in the run was stopped; the other entity flowed on.
    assert not materialized(stack.instance, AssetKey(["current", "current_card_transactions"]), hourly.run_id)
    assert materialized(stack.instance, AssetKey(["current", "current_customers"]), hourly.run_id)
    contracts = {c.name: c for c in stack.contracts}
    assert not materialized(stack.instance, asset_key("scd2", contracts["card_transactions"]), hourly.run_id)
    assert materialized(stack.instance, asset_key("scd2", contracts["customers"]), hourly.run_id)

    # The history sensors start nothing past the failed blocking check: not card_transactions' history,
    # and not the marts, which read raw/card_transactions too; customers' history flows on.
    def history_sensor(entity: str):
        sensor = stack.defs.get_sensor_def(f"history_sensor_{entity}")
        return sensor(build_sensor_context(instance=stack.instance, definitions=stack.defs))

    waiting = history_sensor("card_transactions")
    assert isinstance(waiting, SkipReason)
    assert "raw/raw_card_transactions:valid_changes" in waiting.skip_message
    [customers] = history_sensor("customers").run_requests
    assert customers.asset_selection == [AssetKey(["history", "history_customers"])]
    assert published_versions(stack.lake) == before


def test_a_failing_dbt_test_keeps_readers_on_the_previous_marts(stack):
    """Without the contract's expectation the negative amount reaches `current`; dbt's own tests then fail
    the build, the run's build tables are discarded, and readers keep the previous complete set of marts."""
    lenient = [dataclasses.replace(c, quality=dataclasses.replace(c.quality, expectations=())) for c in stack.contracts]
    lenient_defs = build_definitions(lenient, stack.resources)
    before = published_versions(stack.lake)
    assert all(version is not None for version in before.values()), "the marts must have been published"
    assert run(lenient_defs, stack.instance, "hourly_job", "2026-01-02-03:00", "2026-01-02-03:00").success
    daily = run(lenient_defs, stack.instance, "daily_job", "2026-01-02", "2026-01-02")
    assert not daily.success
    failed_tests = [
        e.asset_check_evaluation_data.check_name
        for e in daily.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION and not e.asset_check_evaluation_data.passed
    ]
    assert failed_tests, "the run must have failed on a dbt test of the marts"
    assert published_versions(stack.lake) == before
    assert mart_rows(stack.lake, "customer_kpis_daily", "select count(*) from marts") == [(1,)]
    assert not build_tables(stack.lake), "the failed run's build tables were not discarded"


def test_a_surge_beyond_the_contracts_row_count_limit_stops_downstream(stack):
    strict = [
        dataclasses.replace(c, quality=dataclasses.replace(c.quality, max_row_count_change=0.5))
        if c.name == "card_transactions"
        else c
        for c in stack.contracts
    ]
    strict_defs = build_definitions(strict, stack.resources)
    stack.publish(stack.source.hour(DAY_TWO + timedelta(hours=8)))
    stack.source.rates = dataclasses.replace(stack.source.rates, transactions=10 * stack.source.rates.transactions)
    stack.publish(stack.source.hour(DAY_TWO + timedelta(hours=9)))
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success

    steady = run(strict_defs, stack.instance, "hourly_job", "2026-01-02-08:00", "2026-01-02-08:00")
    assert steady.success
    surge = run(strict_defs, stack.instance, "hourly_job", "2026-01-02-09:00", "2026-01-02-09:00")
    assert not surge.success
    [check] = [
        e.asset_check_evaluation_data
        for e in surge.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and e.asset_check_evaluation_data.check_name == "row_count_sanity"
        and e.asset_check_evaluation_data.asset_key == AssetKey(["raw", "raw_card_transactions"])
    ]
    assert not check.passed
    assert "raw/raw_card_transactions partition 2026-01-02-09:00" in check.description
    assert "above `quality.max_row_count_change` 50%" in check.description and "raise the limit" in check.description
    assert not materialized(stack.instance, AssetKey(["current", "current_card_transactions"]), surge.run_id)
    assert materialized(stack.instance, AssetKey(["current", "current_customers"]), surge.run_id)
