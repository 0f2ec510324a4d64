"""Contracts inferred from Debezium change events and from registered Avro schemas: they load, and
decode the events they came from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import fastavro
import pytest
from debezium_envelopes import Table, column

from platform_assets.lib.contract import parse_contract
from platform_assets.lib.decode import decode
from platform_assets.lib.infer import InferenceError, infer_contract, infer_contract_from_registry, is_change_event
from platform_assets.lib.records import Change, LandingRecord

pytestmark = pytest.mark.unit

COLUMNS = [
    column("id", "int32", optional=False),
    column("name", "string"),
    column("age", "int16"),
    column("big", "int64"),
    column("ratio", "double"),
    column("active", "boolean"),
    column("born", "int32", name="io.debezium.time.Date", version=1),
    column("seen", "int64", name="io.debezium.time.MicroTimestamp", version=1),
    column("opens", "int64", name="io.debezium.time.MicroTime", version=1),
    column(
        "sal",
        "bytes",
        name="org.apache.kafka.connect.data.Decimal",
        version=1,
        parameters={"scale": "4", "connect.decimal.precision": "19"},
    ),
    column("mood", "string", name="io.debezium.data.Enum", version=1, parameters={"allowed": "sad,ok"}),
    column("photo", "bytes"),
]
AFTER = {
    "id": 1,
    "name": "Ann",
    "age": 30,
    "big": 2**40,
    "ratio": 0.5,
    "active": True,
    "born": 17109,
    "seen": 1529507596945104,
    "opens": 49890000000,
    "sal": "dzWUAA==",
    "mood": "ok",
    "photo": "AAEC",
}
T0 = 1_764_099_880_079


@pytest.mark.parametrize(
    ("table", "position", "sequence"),
    [
        (Table("postgresql", COLUMNS), {"lsn": 5}, "source.lsn"),
        (
            Table("mysql", COLUMNS, prefix="prefix", db="shop"),
            {"file": "binlog.000002", "pos": 1526},
            ["source.file", "source.pos", "source.row"],
        ),
        (
            Table("sqlserver", COLUMNS, prefix="redislabs"),
            {"commit_lsn": "0000003a:00002f50:0005", "change_lsn": "0000003a:00002f50:0002", "event_serial_no": 1},
            ["source.commit_lsn", "source.change_lsn", "source.event_serial_no"],
        ),
    ],
    ids=["postgresql", "mysql", "sqlserver"],
)
def test_an_inferred_contract_orders_by_the_connectors_position_and_decodes_its_events(table, position, sequence):
    value = table.change("c", None, AFTER, T0, **position)
    document, left_out = infer_contract("db.persons", table.key(id=1), value)
    assert document["name"] == "persons" and document["key"] == ["id"]
    assert document["sequence"] == sequence and document["event_time"] == "source.ts_ms"
    assert document["fields"]["id"] == {"type": "int", "nullable": False}
    assert {name: spec["type"] for name, spec in document["fields"].items()} == {
        "id": "int",
        "name": "string",
        "age": "int",
        "big": "long",
        "ratio": "double",
        "active": "boolean",
        "born": "date",
        "seen": "timestamp",
        "opens": "string",
        "sal": "decimal(19, 4)",
        "mood": "string",
    }
    assert left_out == [
        "column `photo` has schema type `bytes`, which no contract type holds: it is left out "
        "of the contract and kept in `_extra`"
    ]
    contract = parse_contract(document)
    change = decode(contract, LandingRecord("db.persons", 0, 0, T0, table.key(id=1), value))
    assert isinstance(change, Change) and change.values["opens"] == "13:51:30"
    assert change.extra == {"photo": "AAEC"}


def test_a_topic_without_schemas_says_how_to_enable_them():
    plain = json.dumps({"before": None, "after": AFTER, "op": "c", "source": {}}).encode()
    assert not is_change_event(plain) and not is_change_event(None)
    with pytest.raises(InferenceError, match=r"value\.converter\.schemas\.enable=true"):
        infer_contract("t", b'{"id": 1}', plain)
    table = Table("postgresql", COLUMNS)
    with pytest.raises(InferenceError, match=r"key\.converter\.schemas\.enable=true"):
        infer_contract("t", b'{"id": 1}', table.change("c", None, AFTER, T0, lsn=1))


# The same table through the AvroConverter, as registered for `<topic>-value` and `<topic>-key`.
AVRO_COLUMNS = [
    {"name": "id", "type": "int"},
    {"name": "name", "type": ["null", "string"], "default": None},
    {"name": "age", "type": ["null", {"type": "int", "connect.type": "int16"}], "default": None},
    {"name": "big", "type": ["null", "long"], "default": None},
    {"name": "ratio", "type": ["null", "double"], "default": None},
    {"name": "active", "type": ["null", "boolean"], "default": None},
    {
        "name": "born",
        "type": ["null", {"type": "int", "connect.version": 1, "connect.name": "io.debezium.time.Date"}],
        "default": None,
    },
    {
        "name": "seen",
        "type": ["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}],
        "default": None,
    },
    {
        "name": "opens",
        "type": ["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTime"}],
        "default": None,
    },
    {
        "name": "sal",
        "type": [
            "null",
            {
                "type": "bytes",
                "scale": 4,
                "precision": 19,
                "connect.version": 1,
                "connect.parameters": {"scale": "4", "connect.decimal.precision": "19"},
                "connect.name": "org.apache.kafka.connect.data.Decimal",
                "logicalType": "decimal",
            },
        ],
        "default": None,
    },
    {
        "name": "mood",
        "type": [
            "null",
            {
                "type": "string",
                "connect.version": 1,
                "connect.parameters": {"allowed": "sad,ok"},
                "connect.name": "io.debezium.data.Enum",
            },
        ],
        "default": None,
    },
    {"name": "photo", "type": ["null", "bytes"], "default": None},
]


def test_the_registered_avro_schemas_infer_the_contract_the_change_events_do():
    """One mapping for both converters: the Avro subjects of a PostgreSQL table give the contract its
    JSON change events give, and that contract decodes the Avro records."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    from debezium_envelopes import avro_envelope_schema, avro_key_schema

    table = Table("postgresql", COLUMNS)
    value_schema = json.dumps(avro_envelope_schema(table.name_prefix, AVRO_COLUMNS))
    key_schema = json.dumps(avro_key_schema(table.name_prefix))
    document, left_out = infer_contract_from_registry("pg.public.persons", value_schema, key_schema)
    from_json, json_left_out = infer_contract(
        "pg.public.persons", table.key(id=1), table.change("c", None, AFTER, T0, lsn=5)
    )
    assert document["fields"] == from_json["fields"]
    assert document["fields"]["sal"] == {"type": "decimal(19, 4)"} and document["fields"]["seen"] == {
        "type": "timestamp"
    }
    assert document["fields"]["name"] == {"type": "string"}, "an optional column (union with null) is nullable"
    assert (document["name"], document["key"], document["sequence"], document["event_time"]) == (
        "persons",
        ["id"],
        "source.lsn",
        "source.ts_ms",
    )
    assert document["description"] == "pg.public.persons captured by Debezium (postgresql)"
    assert (
        left_out
        == json_left_out
        == [
            "column `photo` has schema type `bytes`, which no contract type holds: it is left out "
            "of the contract and kept in `_extra`"
        ]
    )

    registry = SchemaRegistryClient.new_client({"url": "mock://infer-avro"})
    serialize = AvroSerializer(registry, value_schema)
    after = {**AFTER, "sal": Decimal("12.3456"), "seen": 1529507596945104, "photo": b"\x00\x01\x02"}
    value = serialize(
        table.payload("c", None, after, T0, lsn=5), SerializationContext("pg.public.persons", MessageField.VALUE)
    )
    key = AvroSerializer(registry, key_schema)({"id": 1}, SerializationContext("pg.public.persons", MessageField.KEY))
    lookup = lambda schema_id: fastavro.parse_schema(json.loads(registry.get_schema(schema_id).schema_str))  # noqa: E731
    change = decode(parse_contract(document), LandingRecord("pg.public.persons", 0, 0, T0, key, value), lookup)
    assert isinstance(change, Change)
    assert change.values["sal"] == Decimal("12.3456") and change.values["opens"] == "13:51:30"
    assert change.values["seen"] == datetime(2018, 6, 20, 15, 13, 16, 945104, tzinfo=UTC)


def test_a_registered_schema_that_is_no_debezium_envelope_says_to_write_the_contract():
    plain = json.dumps({"type": "record", "name": "Person", "fields": [{"name": "id", "type": "int"}]})
    with pytest.raises(InferenceError, match=r"not a Debezium change event.*`sequence` and `event_time`"):
        infer_contract_from_registry("people", plain, None)
    with pytest.raises(InferenceError, match=r"registered value schema is not an Avro schema"):
        infer_contract_from_registry("people", '{"type": "recrod"}', None)
