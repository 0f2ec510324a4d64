"""`raw/<e>` materialized alone: quarantine is still written and recorded, raw's checks still run."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from dagster import AssetKey, DagsterEventType, DagsterInstance, materialize

from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from simulator.service import ensure_topics

pytestmark = pytest.mark.broker

HOUR = "2026-03-02-10:00"


def test_raw_alone_writes_and_records_quarantine(broker, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    topic = f"gadgets-{suffix}"
    contract = parse_contract(
        {
            "name": "gadgets",
            "source": {"format": "json", "topic": topic, "operation_field": "op"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
            "quality": {"max_quarantine_rate": 0.5},
        }
    )
    ensure_topics(broker, [topic])
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    moment = datetime(2026, 3, 2, 10, 15, tzinfo=UTC).isoformat()
    producer.produce(topic, key=b"a", value=json.dumps({"id": "a", "ts": moment, "v": 1, "op": "c"}).encode())
    producer.produce(topic, key=b"b", value=json.dumps({"id": "b", "ts": moment, "v": "x", "op": "c"}).encode())
    assert producer.flush(30) == 0
    resources = {
        "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"subset-{suffix}"),
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "schema_registry": SchemaRegistryResource(),
    }
    instance = DagsterInstance.ephemeral()
    assert materialize([build_landing_asset(contract)], instance=instance, resources=resources).success

    raw_key, quarantine_key = AssetKey(["raw", "gadgets"]), AssetKey(["quarantine", "gadgets"])
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
