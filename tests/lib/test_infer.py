"""Contracts inferred from Debezium change events: they load, and decode the events they came from."""

from __future__ import annotations

import json

import pytest
from debezium_envelopes import Table, column

from platform_assets.lib.contract import parse_contract
from platform_assets.lib.decode import decode
from platform_assets.lib.infer import InferenceError, infer_contract, is_change_event
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
