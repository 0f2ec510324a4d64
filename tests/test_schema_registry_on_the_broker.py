"""The schema registry loop through the real broker: a producer moves to a new schema version before
the contract does, and the contract follows it with `contracts sync`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from debezium_envelopes import Table, avro_envelope_schema, avro_key_schema
from test_formats_on_the_broker import land_and_decode
from test_schema_registry_loop import NAMESPACE, VERSION_1, VERSION_2, infer

from cli.__main__ import main
from platform_assets.lib.contract import load_contracts
from resources.schema_registry import SchemaRegistryResource
from simulator.service import ensure_topics

pytestmark = pytest.mark.broker


def test_a_producer_that_registers_a_new_version_is_followed_by_syncing_the_contract(broker, tmp_path, monkeypatch):
    """The whole loop on the broker: the connector's serializer registers version 1, the contract is
    inferred from it; the producer moves to version 2 (a new column, a wider one) before the contract
    does; `sync --write` adopts it, and raw decodes both versions' records with nothing quarantined."""
    topic = f"pg.public.persons-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"mock://{topic}")  # as the commands read it
    registry = SchemaRegistryResource.from_env()
    ensure_topics(broker, [topic], partitions=1)
    table = Table("postgresql", [])
    at = datetime(2026, 1, 1, 10, tzinfo=UTC)
    producer = Producer({"bootstrap.servers": broker, "batch.num.messages": 1})

    def produce(columns: list[dict], rows: list[dict]) -> None:
        value = AvroSerializer(registry.client(), json.dumps(avro_envelope_schema(NAMESPACE, columns)))
        key = AvroSerializer(registry.client(), json.dumps(avro_key_schema(NAMESPACE)))
        for row in rows:
            ts_ms = int(at.timestamp() * 1000) + row["id"]
            payload = table.payload("c", None, {**row, "updated_at": ts_ms * 1000}, ts_ms, lsn=1000 + row["id"])
            producer.produce(
                topic,
                key=key({"id": row["id"]}, SerializationContext(topic, MessageField.KEY)),
                value=value(payload, SerializationContext(topic, MessageField.VALUE)),
            )
        assert producer.flush(30) == 0

    produce(VERSION_1, [{"id": 1, "name": "Ann", "balance": Decimal("10.50"), "score": 7}])
    path = tmp_path / "persons.yaml"
    infer(topic, path)
    produce(VERSION_2, [{"id": 2, "name": "Bo", "balance": Decimal("-0.01"), "score": 2**40, "tier": "gold"}])
    main(["contracts", "sync", str(path), "--write"])
    [contract] = load_contracts(tmp_path)
    assert (contract.field("score").type, contract.field("tier").type) == ("long", "string")

    result, raw, quarantine = land_and_decode(contract, broker, tmp_path, registry, "2026-01-01-10:00")
    assert result.success and quarantine == []
    assert sorted((r["id"], r["balance"], r["score"], r["tier"]) for r in raw) == [
        (1, Decimal("10.50"), 7, None),
        (2, Decimal("-0.01"), 2**40, "gold"),
    ]
