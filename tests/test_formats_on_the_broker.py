"""Avro (Confluent wire format, schema registry) and Debezium records through the real broker, landing
and raw; bad records end in quarantine with their bytes and a reason."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from dagster import AssetKey, DagsterInstance, materialize

from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from simulator.service import ensure_topics

pytestmark = pytest.mark.broker

FIELDS = {"id": {"nullable": False}, "name": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}}
SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Thing",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "name", "type": ["null", "string"], "default": None},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "v", "type": "long"},
            {"name": "op", "type": "string"},
        ],
    }
)


def land_and_decode(contract, broker, tmp_path, registry: SchemaRegistryResource, hour: str):
    resources = {
        "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"formats-{uuid.uuid4().hex[:6]}"),
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "schema_registry": registry,
    }
    instance = DagsterInstance.ephemeral()
    assert materialize([build_landing_asset(contract)], instance=instance, resources=resources).success
    result = materialize(
        [build_raw_assets(contract)],
        instance=instance,
        resources=resources,
        partition_key=hour,
        raise_on_error=False,
    )
    lake = resources["lake"]
    return result, lake.read("raw", contract.name).to_pylist(), lake.read("quarantine", contract.name).to_pylist()


def test_avro_records_decode_through_the_schema_registry(broker, tmp_path):
    topic = f"things-avro-{uuid.uuid4().hex[:6]}"
    contract = parse_contract(
        {
            "name": "avro_things",
            "source": {"format": "avro", "topic": topic, "operation_field": "op"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": FIELDS,
        }
    )
    registry = SchemaRegistryResource(url=f"mock://{topic}")
    serializer = AvroSerializer(registry.client(), SCHEMA)
    ensure_topics(broker, [topic])
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    context = SerializationContext(topic, MessageField.VALUE)
    for i, op in enumerate(["c", "u", "d"]):
        value = {"id": "a", "name": f"n{i}", "ts": 1_767_236_400_000 + i, "v": i + 1, "op": op}
        producer.produce(topic, key=b"a", value=serializer(value, context))
    # Records without a readable event time are filed under the hour of their Kafka timestamp.
    in_the_hour = 1_767_238_200_000  # 2026-01-01T03:30Z
    producer.produce(topic, key=b"a", value=b"\x01not-avro", timestamp=in_the_hour)
    producer.produce(topic, key=b"a", value=b"\x00\x00\x00\x03\xe7\x02", timestamp=in_the_hour)  # id 999 unknown
    assert producer.flush(30) == 0

    result, raw, quarantine = land_and_decode(contract, broker, tmp_path, registry, "2026-01-01-03:00")
    assert [(r["_op"], r["v"], r["name"]) for r in raw] == [
        ("create", 1, "n0"),
        ("update", 2, "n1"),
        ("delete", 3, "n2"),
    ]
    assert sorted(q["error"] for q in quarantine) == ["bad_magic_byte", "unknown_schema_id"]
    assert all(q["value"] and q["reason"] for q in quarantine)
    # 2 of 5 records quarantined: far above the 5% limit, so the blocking check fails the run.
    assert not result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "quarantine_rate")
    assert not check.passed and "quarantine" in check.description


def test_debezium_envelopes_with_tombstones(broker, tmp_path):
    topic = f"db.things-{uuid.uuid4().hex[:6]}"
    contract = parse_contract(
        {
            "name": "dbz_things",
            "source": {"format": "debezium", "topic": topic},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": FIELDS,
        }
    )
    ensure_topics(broker, [topic])
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    row = {"id": "a", "name": "x", "ts": "2026-01-01T03:10:00Z", "v": 1}
    envelopes = [
        {"op": "r", "before": None, "after": row, "ts_ms": 1, "source": {"table": "things"}},
        {"op": "u", "before": row, "after": {**row, "name": "y", "v": 2}, "ts_ms": 2, "source": {}},
        {"op": "d", "before": {**row, "v": 3}, "after": None, "ts_ms": 3, "source": {}},
    ]
    for envelope in envelopes:
        producer.produce(topic, key=b"a", value=json.dumps(envelope).encode())
    # The tombstone Debezium sends right after a delete: no event time, so its Kafka time files it.
    producer.produce(topic, key=b"a", value=None, timestamp=1_767_238_200_000)
    assert producer.flush(30) == 0

    result, raw, quarantine = land_and_decode(contract, broker, tmp_path, SchemaRegistryResource(), "2026-01-01-03:00")
    assert result.success
    assert [(r["_op"], r["v"]) for r in raw] == [("create", 1), ("update", 2), ("delete", 3)]
    assert quarantine == []
    materialization = result.asset_materializations_for_node("raw_dbz_things")
    raw_metadata = next(m for m in materialization if m.asset_key == AssetKey(["raw", "raw_dbz_things"])).metadata
    assert raw_metadata["skipped_tombstones"].value == 1
