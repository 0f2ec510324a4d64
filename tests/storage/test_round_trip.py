"""The real assets on an object store: landing from the broker, raw decoding, then the current MERGE on Sail."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from resources.lake import LakeResource

pytestmark = [pytest.mark.storage, pytest.mark.broker, pytest.mark.spark]

HOUR = datetime(2026, 1, 1, 3, tzinfo=UTC)


@contextmanager
def sail_session() -> Iterator[Any]:
    """A Spark Connect session on a Sail server of its own, started after the storage environment is set."""
    from pyspark.sql import SparkSession

    from resources.spark import start_sail_server, use_client_only_spark_home

    use_client_only_spark_home()
    server = start_sail_server()
    try:
        _, port = server.listening_address
        spark = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        try:
            yield spark
        finally:
            spark.stop()
    finally:
        server.stop()


@pytest.mark.parametrize("object_lake", ["s3", "azure-abfss"], indirect=True)
def test_landing_raw_and_current_round_trip_on_the_object_store(object_lake: LakeResource, broker):
    """The real assets: landing from the broker, raw decoding, then the current MERGE on Sail."""
    from confluent_kafka import Producer
    from dagster import AssetKey, DagsterInstance, materialize

    from platform_assets.entity import merge_spec
    from platform_assets.landing import build_landing_asset
    from platform_assets.lib.archive import app_id
    from platform_assets.lib.contract import parse_contract
    from platform_assets.lib.tables import current_schema
    from platform_assets.raw import build_raw_assets
    from resources.kafka import KafkaResource
    from resources.schema_registry import SchemaRegistryResource
    from simulator.service import ensure_topics
    from spark.cdc import changes_between, merge_into_current

    lake, suffix = object_lake, uuid.uuid4().hex[:6]
    topics = {"create": f"obj-create-{suffix}", "update": f"obj-update-{suffix}", "delete": f"obj-delete-{suffix}"}
    contract = parse_contract(
        {
            "name": "things",
            "source": {"format": "json", "topics": topics},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {"nullable": False}, "colour": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
            "quality": {"max_quarantine_rate": 0.5},
        }
    )
    ensure_topics(broker, topics.values())
    producer = Producer({"bootstrap.servers": broker})
    events: list[tuple[str, str, int, str | None]] = [
        ("create", "a", 1, "red"),
        ("create", "b", 1, "blue"),
        ("update", "a", 2, "green"),
        ("delete", "b", 2, None),
    ]
    for minute, (operation, key, version, colour) in enumerate(events):
        value = {"id": key, "colour": colour, "ts": f"2026-01-01T03:{minute:02d}:00Z", "v": version}
        producer.produce(topics[operation], key=key.encode(), value=json.dumps(value).encode())
    producer.produce(topics["update"], key=b"c", value=b"{not json", timestamp=int(HOUR.timestamp() * 1000) + 1)
    assert producer.flush(30) == 0

    def resources(group: str) -> dict[str, Any]:
        kafka = KafkaResource(bootstrap_servers=broker, group_prefix=f"{group}-{suffix}")
        return {"kafka": kafka, "lake": lake, "schema_registry": SchemaRegistryResource()}

    instance = DagsterInstance.ephemeral()
    landing = build_landing_asset(contract)
    assert materialize([landing], instance=instance, resources=resources("first")).success
    landed = lake.read("landing", "things")
    assert landed.num_rows == 5
    assert lake.transaction_version("landing", "things", app_id("things", topics["update"], 0)) == 1
    # A consumer group that never committed resumes from the Delta log's app transactions: nothing twice.
    again = materialize([landing], instance=instance, resources=resources("second"))
    assert again.success
    [landing_run] = again.asset_materializations_for_node(landing.op.name)
    assert landing_run.metadata["records"].value == 0
    assert lake.read("landing", "things").num_rows == 5

    result = materialize(
        [build_raw_assets(contract)], instance=instance, resources=resources("first"), partition_key="2026-01-01-03:00"
    )
    assert result.success
    raw = lake.read("raw", "things").to_pylist()
    assert sorted((r["_op"], r["id"], r["v"]) for r in raw) == [
        ("create", "a", 1),
        ("create", "b", 1),
        ("delete", "b", 2),
        ("update", "a", 2),
    ]
    [quarantined] = lake.read("quarantine", "things").to_pylist()
    assert quarantined["value"] == b"{not json" and quarantined["reason"]
    metadata = {m.asset_key: m.metadata for m in result.asset_materializations_for_node("raw_things")}
    assert metadata[AssetKey(["raw", "raw_things"])]["records_in"].value == 5

    layers = ("current", "current_tombstones")
    for layer in layers:
        lake.create_if_missing(layer, "things", current_schema(contract))
    with sail_session() as spark:
        for _ in range(2):  # a re-applied hour changes nothing
            changes = changes_between(spark, lake.uri("raw", "things"), HOUR, HOUR + timedelta(hours=1))
            merge_into_current(spark, changes, *(lake.uri(layer, "things") for layer in layers), merge_spec(contract))
    current = {r["id"]: (r["colour"], r["v"]) for r in lake.read("current", "things").to_pylist()}
    assert current == {"a": ("green", 2)}
    tombstones = {r["id"]: r["v"] for r in lake.read("current_tombstones", "things").to_pylist()}
    assert tombstones == {"b": 2}
