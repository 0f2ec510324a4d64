"""Records whose event time lies outside the partitions that exist are quarantined, never lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize
from helpers import json_entity_on_new_topic

from platform_assets.landing import build_landing_asset
from platform_assets.raw import build_raw_assets
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

pytestmark = pytest.mark.broker

KAFKA_TIME_MS = 1_767_263_400_000  # 2026-01-01T10:30Z


def test_events_before_the_first_partition_or_in_the_far_future_reach_quarantine_and_its_gate(broker, tmp_path):
    event_times = ["2026-01-01T10:05:00Z", "2099-01-01T00:00:00Z", "2025-12-31T23:00:00Z", -1000]
    contract = json_entity_on_new_topic(broker, "bounded", event_times, timestamp_ms=KAFKA_TIME_MS)
    resources = {
        "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"bounds-{uuid.uuid4().hex[:6]}"),
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "schema_registry": SchemaRegistryResource(),
    }
    instance = DagsterInstance.ephemeral()
    assert materialize([build_landing_asset(contract)], instance=instance, resources=resources).success
    lake = resources["lake"]
    assert set(lake.read("landing", "bounded").column("_event_hour").to_pylist()) == {
        datetime(2026, 1, 1, 10, tzinfo=UTC)
    }

    result = materialize(
        [build_raw_assets(contract)],
        instance=instance,
        resources=resources,
        partition_key="2026-01-01-10:00",
        raise_on_error=False,
    )

    assert [row["id"] for row in lake.read("raw", "bounded").to_pylist()] == ["k0"]
    quarantined = lake.read("quarantine", "bounded").to_pylist()
    assert sorted(row["_offset"] for row in quarantined) == [1, 2, 3]
    assert {row["error"] for row in quarantined} == {"event_time_out_of_range"}
    assert all("2026-01-01 00:00 (PLATFORM_START)" in row["reason"] for row in quarantined)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["quarantine_rate"].passed
    assert evaluations["every_record_accounted"].passed
