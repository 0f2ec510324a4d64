"""The schema registry in the contract's loop: a contract inferred from an Avro topic's subjects, each
new schema version reported once by the sensor (compatible or not, with the change that adopts it), and
that change proposed as a diff of the contract file by `contracts sync`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from confluent_kafka.schema_registry import Schema
from dagster import AssetObservation, DagsterInstance, SensorResult, build_sensor_context
from debezium_envelopes import AVRO_BALANCE, avro_envelope_schema, avro_key_schema

from cli.__main__ import main
from platform_assets.landing import topic_key
from platform_assets.lib.contract import Contract, load_contracts, parse_contract
from platform_assets.schema_changes import propose
from platform_assets.sensors import build_schema_registry_sensor
from resources.schema_registry import RegisteredSchema, SchemaRegistryResource

pytestmark = pytest.mark.unit

NAMESPACE = "pg.public.persons"
MICRO_TIMESTAMP = {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}
VERSION_1 = [
    {"name": "id", "type": "int"},
    {"name": "name", "type": "string"},
    AVRO_BALANCE,
    {"name": "updated_at", "type": ["null", MICRO_TIMESTAMP], "default": None},
    {"name": "score", "type": ["null", "int"], "default": None},
]
# The producer adds a nullable column and widens one: the contract can follow in place.
VERSION_2 = [
    *VERSION_1[:4],
    {"name": "score", "type": ["null", "long"], "default": None},
    {"name": "tier", "type": ["null", "string"], "default": None},
]
# ...then turns a number into text: the stored numbers cannot take it.
VERSION_3 = [*VERSION_2[:4], {"name": "score", "type": ["null", "string"], "default": None}, VERSION_2[5]]


@pytest.fixture
def registry(monkeypatch) -> SchemaRegistryResource:
    """A private in-memory registry (confluent-kafka's mock client), named by SCHEMA_REGISTRY_URL as the
    commands read it."""
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"mock://loop-{uuid.uuid4().hex[:8]}")
    return SchemaRegistryResource.from_env()


def register(registry: SchemaRegistryResource, topic: str, columns: list[dict]) -> int:
    """Registers the value schema (and the key schema) as the AvroConverter does; the value's version."""
    client = registry.client()
    client.register_schema(f"{topic}-key", Schema(json.dumps(avro_key_schema(NAMESPACE)), "AVRO"))
    client.register_schema(f"{topic}-value", Schema(json.dumps(avro_envelope_schema(NAMESPACE, columns)), "AVRO"))
    return client.get_version(f"{topic}-value", "latest").version


def infer(topic: str, output: Path) -> None:
    main(["contracts", "infer", "--topic", topic, "--registry", "--output", str(output), "--name", "persons"])


def test_a_contract_is_inferred_from_the_registry_subjects(registry, tmp_path, capsys):
    topic = "pg.public.persons"
    register(registry, topic, VERSION_1)
    output = tmp_path / "persons.yaml"
    infer(topic, output)
    assert f"wrote {output}: entity persons, 5 fields" in capsys.readouterr().out
    assert output.read_text().startswith("# Inferred from the schema registry subjects of pg.public.persons")
    [contract] = load_contracts(tmp_path)
    assert (contract.source.format, contract.source.topics) == ("debezium", (topic,))
    assert (contract.key, contract.sequence, contract.event_time) == (("id",), ("source.lsn",), "source.ts_ms")
    assert [(f.name, f.type, f.nullable) for f in contract.fields] == [
        ("id", "int", False),
        ("name", "string", False),
        ("balance", "decimal", True),
        ("updated_at", "timestamp", True),
        ("score", "int", True),
    ]
    assert (contract.field("balance").precision, contract.field("balance").scale) == (12, 2)


def test_a_topic_without_a_subject_is_named_with_the_fix(registry):
    with pytest.raises(SystemExit, match=r"no subject `pg\.public\.nobody-value`.*AvroConverter"):
        main(["contracts", "infer", "--topic", "pg.public.nobody", "--registry"])


def observations(result: SensorResult | object) -> list[AssetObservation]:
    assert isinstance(result, SensorResult) and not result.run_requests
    return [event for event in result.asset_events if isinstance(event, AssetObservation)]


def test_the_sensor_reports_each_new_version_once_with_the_change_that_adopts_it(registry, tmp_path):
    topic = "pg.public.persons"
    register(registry, topic, VERSION_1)
    infer(topic, tmp_path / "persons.yaml")
    # A Debezium topic read with the JsonConverter has no subject: passed over.
    (tmp_path / "orders.yaml").write_text(
        "name: orders\nsource: {format: debezium, topic: pg.public.orders}\nkey: [id]\nsequence: source.lsn\n"
        "event_time: source.ts_ms\nfields:\n  id: {type: int, nullable: false}\n"
    )
    sensor = build_schema_registry_sensor(load_contracts(tmp_path))
    instance = DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> SensorResult:
        context = build_sensor_context(instance=instance, cursor=cursor, resources={"schema_registry": registry})
        result = sensor(context)
        assert isinstance(result, SensorResult)
        return result

    first = tick(None)
    assert observations(first) == [], "version 1 is the contract"
    assert json.loads(first.cursor or "") == {f"{topic}-value": 1}

    assert register(registry, topic, VERSION_2) == 2
    second = tick(first.cursor)
    [compatible] = observations(second)
    assert compatible.asset_key == topic_key(topic)
    metadata = {name: value.value for name, value in compatible.metadata.items()}
    assert (metadata["entity"], metadata["subject"], metadata["schema_version"], metadata["compatible"]) == (
        "persons",
        f"{topic}-value",
        2,
        True,
    )
    assert second.skip_reason is not None
    message = second.skip_reason.skip_message
    assert f"`persons` ({tmp_path / 'persons.yaml'}): subject `{topic}-value` version 2 is compatible" in message
    assert "widen field `score` from int to long" in message and "add field `tier` {type: string}" in message
    change = str(metadata["contract_change"])
    assert (
        change.startswith(message)
        and "   score:\n-    type: int\n+    type: long\n+  tier:\n+    type: string\n" in change
    )

    third = tick(second.cursor)
    assert observations(third) == [], "a version is reported once"

    assert register(registry, topic, VERSION_3) == 3
    fourth = tick(third.cursor)
    [incompatible] = observations(fourth)
    assert incompatible.metadata["compatible"].value is False
    assert incompatible.metadata["schema_version"].value == 3
    message = fourth.skip_reason.skip_message if fourth.skip_reason else ""
    assert "version 3 is incompatible with the contract" in message
    assert "change field `score` from int to string" in message
    assert "field `score` changed from int32 to string, which does not hold every stored value" in message
    assert "python -m cli contracts migrate --entity persons" in message
    assert observations(tick(fourth.cursor)) == []


def test_sync_shows_the_change_as_a_diff_and_writes_it_when_asked(registry, tmp_path, capsys):
    topic = "pg.public.persons"
    register(registry, topic, VERSION_1)
    path = tmp_path / "persons.yaml"
    infer(topic, path)
    path.write_text(path.read_text().replace("owner: ''", "owner: people-team  # reviewed"))
    before = path.read_text()
    register(registry, topic, VERSION_2)
    capsys.readouterr()

    main(["contracts", "sync", str(path)])
    shown = capsys.readouterr().out
    assert path.read_text() == before, "sync writes nothing unless asked"
    assert f"--- {path}\n+++ {path}\n" in shown
    assert "-    type: int\n+    type: long\n" in shown
    assert "+  tier:\n+    type: string\n" in shown
    assert "version 2 is compatible with the contract" in shown
    changed = [line for line in shown.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 4, "only the adopted change: score's type, and tier"

    main(["contracts", "sync", str(path), "--write"])
    assert f"wrote {path}" in capsys.readouterr().out
    assert "owner: people-team  # reviewed" in path.read_text(), "comments and edits are kept"
    [contract] = load_contracts(tmp_path)
    assert (contract.field("score").type, contract.field("tier").type, contract.field("tier").nullable) == (
        "long",
        "string",
        True,
    )
    main(["contracts", "sync", str(path)])
    assert "version 2 matches the contract" in capsys.readouterr().out


PAYMENTS = """# Owned by the payments team.
name: payments
source: {format: avro, topic: payments}
key: [payment_id]
sequence: version
event_time: paid_at
fields:
  payment_id: {type: string, nullable: false}
  version: {type: long, nullable: false}
  paid_at: {type: timestamp, nullable: false}
  amount: {type: 'decimal(10, 2)', nullable: false}
  memo: {type: string}
  rate: {type: double}
  price: {type: 'decimal(20, 4)'}
"""


def payment_schema(*fields: dict) -> RegisteredSchema:
    """A plain Avro value (no Debezium envelope): the record's fields are the row."""
    always = [
        {"name": "payment_id", "type": "string"},
        {"name": "version", "type": "long"},
        {"name": "paid_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "rate", "type": ["null", "int"]},  # the contract's double takes it as it is
        {"name": "price", "type": ["null", "double"]},  # read as the declared decimal
    ]
    schema = {"type": "record", "name": "Payment", "fields": [*always, *fields]}
    return RegisteredSchema("payments-value", 7, 70, json.dumps(schema))


def payments(tmp_path: Path) -> Contract:
    path = tmp_path / "payments.yaml"
    path.write_text(PAYMENTS)
    return parse_contract(yaml.safe_load(PAYMENTS), str(path))


def test_a_plain_avro_value_is_adopted_in_the_contracts_own_style(tmp_path):
    """A decimal made nullable and wider, a field removed and one added: compatible, written as the file
    writes its fields (flow style), its comment kept."""
    amount = {"type": "bytes", "logicalType": "decimal", "precision": 14, "scale": 2}
    proposal = propose(
        payments(tmp_path),
        payment_schema({"name": "amount", "type": ["null", amount]}, {"name": "fee", "type": ["null", amount]}),
        None,
    )
    assert proposal.changes == (
        "widen field `amount` from decimal(10, 2) to decimal(14, 2)",
        "make field `amount` nullable",
        "add field `fee` {type: 'decimal(14, 2)'}",
        "remove field `memo` (its column stays, no longer filled)",
    )
    assert proposal.compatible, proposal.refusals
    assert proposal.text == PAYMENTS.replace(
        "  amount: {type: 'decimal(10, 2)', nullable: false}\n  memo: {type: string}\n",
        "  amount: {type: 'decimal(14, 2)'}\n",
    ).replace(
        "  price: {type: 'decimal(20, 4)'}\n",
        "  price: {type: 'decimal(20, 4)'}\n  fee: {type: 'decimal(14, 2)'}\n",
    )
    assert parse_contract(yaml.safe_load(proposal.text)).field("fee").precision == 14


def test_what_the_tables_cannot_follow_is_named_with_the_way_forward(tmp_path):
    contract = payments(tmp_path)
    required = propose(
        contract,
        payment_schema(
            {"name": "amount", "type": "int"}, {"name": "memo", "type": "string"}, {"name": "region", "type": "string"}
        ),
        None,
    )
    assert required.changes == (
        "change field `amount` from decimal(10, 2) to int",
        "add field `region` {type: string, nullable: false}",
    )
    assert required.refusals == (
        "field `region` changed from nullable to nullable: false",
        "field `amount` changed from decimal128(10, 2) to int32, which does not hold every stored value",
    )
    assert "python -m cli contracts migrate --entity payments" in required.message()
    # The producer drops `version` (the contract's sequence) and keys the topic by `memo`.
    key = {"type": "record", "name": "PaymentKey", "fields": [{"name": "memo", "type": "string"}]}
    value = json.loads(payment_schema({"name": "memo", "type": "string"}).schema)
    value["fields"] = [f for f in value["fields"] if f["name"] != "version"]
    rekeyed = propose(
        contract,
        RegisteredSchema("payments-value", 8, 80, json.dumps(value)),
        RegisteredSchema("payments-key", 1, 81, json.dumps(key)),
    )
    assert rekeyed.changes == (
        "remove field `amount` (its column stays, no longer filled)",
        "change the key from ['payment_id'] to ['memo']",
    )
    assert rekeyed.refusals == (
        "field `version` is in the contract's key, sequence or event_time, and the schema has it not",
        "key changed from [payment_id] to [memo]",
    )
    assert not rekeyed.compatible


def test_the_sensor_is_part_of_a_location_that_has_an_avro_or_debezium_entity(registry, tmp_path):
    from platform_assets.definitions import build_definitions

    shipped = load_contracts()  # JSON entities only: nothing to watch
    assert "schema_registry_sensor" not in {s.name for s in build_definitions(shipped).sensors}
    register(registry, "pg.public.persons", VERSION_1)
    infer("pg.public.persons", tmp_path / "persons.yaml")
    with_avro = build_definitions(shipped + load_contracts(tmp_path))
    sensor = {s.name: s for s in with_avro.sensors}["schema_registry_sensor"]
    assert sensor.required_resource_keys == {"schema_registry"}


def test_the_daemon_records_each_version_once_on_the_topic(registry, tmp_path, monkeypatch):
    """Through the sensor daemon: the observations land on the topic's asset and the cursor that keeps
    a version from being reported twice survives between ticks."""
    from dagster._core.test_utils import instance_for_test
    from helpers import loaded_location, tick

    topic = "pg.public.persons"
    register(registry, topic, VERSION_1)
    infer(topic, tmp_path / "persons.yaml")
    monkeypatch.setenv("TEST_CONTRACTS_DIR", str(tmp_path))
    start = datetime.now(UTC)

    def reported_versions(instance) -> list[int]:
        records = instance.fetch_observations(topic_key(topic), limit=10, ascending=True).records
        return [record.asset_observation.metadata["schema_version"].value for record in records]

    with instance_for_test() as instance, loaded_location(instance, "registry_location") as workspace:
        tick(workspace, start)
        register(registry, topic, VERSION_2)
        tick(workspace, start + timedelta(minutes=1))
        tick(workspace, start + timedelta(minutes=2))
        assert reported_versions(instance) == [2]
        register(registry, topic, VERSION_3)
        tick(workspace, start + timedelta(minutes=3))
        tick(workspace, start + timedelta(minutes=4))
        assert reported_versions(instance) == [2, 3]


def test_the_newest_version_is_asked_of_the_registry_every_time(monkeypatch):
    """Over HTTP, as a deployed registry answers: a version registered after the first look is seen (the
    client's own `get_latest_version` would keep answering with the first one), and a missing subject
    is None."""
    from schema_registry_standin import Registry, serve_registry

    first, second = (json.dumps(avro_envelope_schema(NAMESPACE, columns)) for columns in (VERSION_1, VERSION_2))
    standin = Registry({11: first}, "platform", "registry-password", "token", subjects={"persons-value": [11]})
    with serve_registry(standin) as running:
        monkeypatch.setenv("SCHEMA_REGISTRY_URL", running.url)
        monkeypatch.setenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "platform:registry-password")
        registry = SchemaRegistryResource.from_env()
        assert registry.latest_schema("persons-value") == RegisteredSchema("persons-value", 1, 11, first)
        running.schemas[12] = second
        running.subjects["persons-value"].append(12)
        assert registry.latest_schema("persons-value") == RegisteredSchema("persons-value", 2, 12, second)
        assert registry.latest_schema("nobody-value") is None
