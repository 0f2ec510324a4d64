"""A contract that changes while its entity is live (the Netfonds flow): producers start sending `tier`
before the contract names it; on day 2 the contract adds `tier` and widens `score` from int to long. Day 2
materializes with no manual step, the drift warning named `tier` on day 1, and a backfill of day 1 fills
`tier` from the archive for every row whose record carried it; `current` equals the reference."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from dagster import DagsterInstance, materialize

from platform_assets.current import build_current_asset
from platform_assets.entity import raw_keys_cover
from platform_assets.history import build_history_asset
from platform_assets.landing import build_landing_asset
from platform_assets.lib import ordering
from platform_assets.lib.contract import parse_contract
from platform_assets.raw import build_raw_assets
from platform_assets.scd2 import build_scd2_asset
from resources.kafka import KafkaResource
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource
from resources.spark import SparkResource
from simulator.service import ensure_topics

pytestmark = [pytest.mark.broker, pytest.mark.spark]

DAY1, DAY2 = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 2, 10, tzinfo=UTC)


def contract(topic: str, **changes):
    fields = {
        "id": {"nullable": False},
        "ts": {"type": "timestamp", "nullable": False},
        "v": {"type": "long", "nullable": False},
        "score": {"type": "int"},
        **changes,
    }
    return parse_contract(
        {
            "name": "members",
            "source": {"format": "json", "topic": topic, "operation_field": "op"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": fields,
        },
        "contracts/members.yaml",
    )


def produce(broker: str, topic: str, events: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})
    for event in events:
        producer.produce(topic, key=event["id"].encode(), value=json.dumps(event).encode())
    assert producer.flush(30) == 0


def chain(contract_, resources, instance, hour: str, day: str) -> None:
    assets = [build_landing_asset(contract_), build_raw_assets(contract_), build_current_asset(contract_)]
    assert materialize(assets[:1], instance=instance, resources=resources).success
    raw_result = materialize(assets, instance=instance, resources=resources, partition_key=hour, selection=assets[1:])
    assert raw_result.success
    history = build_history_asset(contract_)
    assert materialize([history], instance=instance, resources=resources, partition_key=day).success
    return raw_result


@pytest.fixture
def members(broker, tmp_path):
    """A fresh topic for the members entity, and the resources, lake and instance of its runs."""
    topic = f"members-{uuid.uuid4().hex[:6]}"
    ensure_topics(broker, [topic])
    resources = {
        "kafka": KafkaResource(bootstrap_servers=broker, group_prefix=f"evolve-{topic}"),
        "lake": LakeResource(root=str(tmp_path / "lake")),
        "schema_registry": SchemaRegistryResource(),
        "spark": SparkResource(),
    }
    return topic, resources, resources["lake"], DagsterInstance.ephemeral()


def test_a_field_added_and_a_field_widened_while_live(broker, members):
    topic, resources, lake, instance = members
    day1 = [
        {"id": "a", "ts": DAY1.isoformat(), "v": 1, "score": 10, "op": "c"},
        {"id": "b", "ts": DAY1.isoformat(), "v": 1, "score": 20, "tier": "gold", "op": "c"},
    ]
    produce(broker, topic, day1)
    v1 = contract(topic)
    day1_run = chain(v1, resources, instance, "2026-01-01-10:00", "2026-01-01")
    drift = next(e for e in day1_run.get_asset_check_evaluations() if e.check_name == "unknown_fields")
    assert not drift.passed and "`tier` (1 of 2 records)" in drift.description

    # Day 2: the contract adds `tier` and widens `score`; nothing is deleted or rebuilt by hand.
    big = 2**40
    produce(broker, topic, [{"id": "a", "ts": DAY2.isoformat(), "v": 2, "score": big, "tier": "silver", "op": "u"}])
    v2 = contract(topic, score={"type": "long"}, tier={"type": "string"})
    chain(v2, resources, instance, "2026-01-02-10:00", "2026-01-02")
    current = {r["id"]: (r["score"], r["tier"]) for r in lake.read("current", "members").to_pylist()}
    assert current == {"a": (big, "silver"), "b": (20, None)}, "b was merged before the contract named tier"

    # A backfill of day 1 decodes the archive with the contract in force: b's tier is filled.
    assets = [build_raw_assets(v2), build_current_asset(v2)]
    assert materialize(assets, instance=instance, resources=resources, partition_key="2026-01-01-10:00").success
    assert materialize(
        [build_history_asset(v2)], instance=instance, resources=resources, partition_key="2026-01-02"
    ).success
    raw = lake.read("raw", "members").to_pylist()
    reference = ordering.live_rows(v2, raw)
    current = {r["id"]: (r["score"], r["tier"]) for r in lake.read("current", "members").to_pylist()}
    assert (
        current
        == {k[0]: (r["score"], r["tier"]) for k, r in reference.items()}
        == {
            "a": (big, "silver"),
            "b": (20, "gold"),
        }
    )
    history = {
        (r["snapshot_date"].isoformat(), r["id"]): r["tier"] for r in lake.read("history", "members").to_pylist()
    }
    assert history == {
        ("2026-01-01", "a"): None,
        ("2026-01-01", "b"): "gold",
        ("2026-01-02", "a"): "silver",
        ("2026-01-02", "b"): "gold",
    }


def test_a_breaking_change_is_refused_and_the_migration_equals_a_rebuild_from_scratch(broker, members, tmp_path, spark):
    from platform_assets.entity import contract_changes_refused
    from platform_assets.migration import migrate

    topic, resources, lake, instance = members
    produce(
        broker,
        topic,
        [
            {"id": "a", "ts": DAY1.isoformat(), "v": 5, "score": 1, "op": "c"},
            {"id": "a", "ts": DAY2.isoformat(), "v": 4, "score": 2, "op": "u"},
            {"id": "b", "ts": DAY2.isoformat(), "v": 1, "score": 3, "op": "c"},
        ],
    )
    v1 = contract(topic)
    for hour, day in (("2026-01-01-10:00", "2026-01-01"), ("2026-01-02-10:00", "2026-01-02")):
        chain(v1, resources, instance, hour, day)
    assert {r["id"]: r["score"] for r in lake.read("current", "members").to_pylist()} == {"a": 1, "b": 3}

    # Ordering by event time instead of `v` changes which change of `a` wins: refused, with the way forward.
    by_time = parse_contract({**_document(topic), "sequence": "ts"}, "contracts/members.yaml")
    refusal = contract_changes_refused(lake, by_time)
    assert (
        refusal and "sequence changed from [v] to [ts]" in refusal and "contracts migrate --entity members" in refusal
    )
    refused = materialize(
        [build_raw_assets(by_time)],
        instance=instance,
        resources=resources,
        partition_key="2026-01-02-10:00",
        raise_on_error=False,
    )
    assert not refused.success

    published = migrate(by_time, lake, spark)
    assert published["current"] == 2 and contract_changes_refused(lake, by_time) is None
    # The published `raw_keys` names every hour of the rebuilt raw, and an erasure trusts it again.
    assert raw_keys_cover(lake, "members", by_time.key)
    hours_of = {(r["id"], r["_event_hour"]) for r in lake.read("raw", "members").to_pylist()}
    assert {(r["id"], r["_event_hour"]) for r in lake.read("raw_keys", "members").to_pylist()} == hours_of
    scratch = LakeResource(root=str(tmp_path / "scratch"))
    scratch.append("landing", "members", lake.read("landing", "members"))
    rebuilt = {**resources, "lake": scratch}
    for hour, day in (("2026-01-01-10:00", "2026-01-01"), ("2026-01-02-10:00", "2026-01-02")):
        assets = [build_raw_assets(by_time), build_current_asset(by_time), build_scd2_asset(by_time)]
        assert materialize(assets, instance=instance, resources=rebuilt, partition_key=hour).success
        assert materialize(
            [build_history_asset(by_time)], instance=instance, resources=rebuilt, partition_key=day
        ).success
    for layer in ("raw", "current", "current_tombstones", "history", "scd2"):
        validity = {"history": ["snapshot_date"], "scd2": ["valid_from", "valid_to"]}.get(layer, [])
        columns = [*validity, "id", "v", "score"]
        migrated = sorted(lake.read(layer, "members").select(columns).to_pylist(), key=str)
        assert migrated == sorted(scratch.read(layer, "members").select(columns).to_pylist(), key=str), layer
    assert {r["id"]: r["score"] for r in lake.read("current", "members").to_pylist()} == {"a": 2, "b": 3}


def test_a_double_that_becomes_a_decimal_is_migrated_to_exact_values(broker, members, spark):
    """What a lake written before `card_transactions.amount` became decimal(12, 2) goes through: the change
    is refused while the tables hold doubles, and the migration decodes the archived JSON numbers again,
    exactly (a double's 0.1 is not 0.10)."""
    from decimal import Decimal

    from platform_assets.entity import contract_changes_refused
    from platform_assets.migration import migrate

    topic, resources, lake, instance = members
    amounts = {"a": "0.10", "b": "98765432.19", "c": "0.30"}
    produce(
        broker,
        topic,
        [{"id": k, "ts": DAY1.isoformat(), "v": 1, "amount": float(a), "op": "c"} for k, a in amounts.items()],
    )
    chain(contract(topic, amount={"type": "double"}), resources, instance, "2026-01-01-10:00", "2026-01-01")
    money = contract(topic, amount={"type": "decimal(12, 2)"})
    refusal = contract_changes_refused(lake, money)
    assert refusal and "field `amount` changed from double to decimal128(12, 2)" in refusal
    assert "contracts migrate --entity members" in refusal

    migrate(money, lake, spark)
    assert contract_changes_refused(lake, money) is None
    for layer in ("raw", "current", "history"):
        amounts_stored = {r["id"]: r["amount"] for r in lake.read(layer, "members").to_pylist()}
        assert amounts_stored == {k: Decimal(a) for k, a in amounts.items()}, layer
        assert {str(amount) for amount in amounts_stored.values()} == set(amounts.values()), layer


def _document(topic: str) -> dict:
    return {
        "name": "members",
        "source": {"format": "json", "topic": topic, "operation_field": "op"},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {
            "id": {"nullable": False},
            "ts": {"type": "timestamp", "nullable": False},
            "v": {"type": "long", "nullable": False},
            "score": {"type": "int"},
        },
    }
