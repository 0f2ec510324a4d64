"""Full snapshot loads from the source's REST export: keys that Kafka never delivered arrive through the
snapshot, newer events still win by sequence, and a full refresh from the latest snapshot plus later
events gives the same current table."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetKey, materialize
from helpers import run

from platform_assets.definitions import build_definitions
from platform_assets.partitions import hour_key
from simulator.service import serve_rest
from simulator.source import Rates

pytestmark = [pytest.mark.broker, pytest.mark.spark]

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack(platform_stack):
    stack = platform_stack(Rates(creates=6, updates=6, deletes=1, transactions=2, late_share=0), seed=21)
    server = serve_rest(stack.source, 0, threading.Lock())
    url = f"http://127.0.0.1:{server.server_address[1]}/customers"
    stack.contracts = [dataclasses.replace(c, snapshot_url=url) if c.snapshot_url else c for c in stack.contracts]
    stack.defs = build_definitions(stack.contracts, stack.resources)
    yield stack
    server.shutdown()


def current_live(lake) -> dict[str, dict]:
    return {r["customer_id"]: r for r in lake.read("current", "customers").to_pylist()}


def test_snapshot_brings_the_history_kafka_never_delivered(stack):
    # Twelve hours happen before the platform exists: they are only in the REST export.
    for hour in range(12):
        stack.source.hour(START + timedelta(hours=hour))
    defs = stack.defs
    snapshot = defs.resolve_assets_def(AssetKey(["snapshot", "snapshot_customers"]))
    as_of = START + timedelta(hours=12)
    result = materialize(
        [snapshot],
        instance=stack.instance,
        run_config={"ops": {"snapshot__snapshot_customers": {"config": {"as_of": as_of.isoformat(), "page_size": 7}}}},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("snapshot__snapshot_customers")
    assert materialization.metadata["rows"].value == len(stack.source.customers)

    for hour in range(12, 24):
        stack.publish(stack.source.hour(START + timedelta(hours=hour)))
    assert defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success
    assert run(defs, stack.instance, "hourly_job", hour_key(as_of), hour_key(START + timedelta(hours=23))).success

    expected = stack.source.customers
    live = current_live(stack.lake)
    assert set(live) == set(expected)
    assert {k: r["version"] for k, r in live.items()} == {k: c["version"] for k, c in expected.items()}
    snapshot_rows = [r for r in stack.lake.read("raw", "customers").to_pylist() if r["_topic"].startswith("_snapshot.")]
    assert {r["_event_hour"] for r in snapshot_rows} == {as_of}

    # Full refresh: the latest snapshot plus every later event gives the same table.
    before = sorted(stack.lake.read("current", "customers").to_pylist(), key=lambda r: r["customer_id"])
    refreshed = defs.resolve_job_def("hourly_job").execute_in_process(
        instance=stack.instance,
        partition_key=hour_key(START + timedelta(hours=23)),
        run_config={"ops": {"current__current_customers": {"config": {"full_refresh": True}}}},
    )
    assert refreshed.success
    after = sorted(stack.lake.read("current", "customers").to_pylist(), key=lambda r: r["customer_id"])
    assert after == before
