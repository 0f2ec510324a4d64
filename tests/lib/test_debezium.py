"""Debezium change events as the PostgreSQL, MySQL and SQL Server connectors send them: ordered and
timed by their source position, with the envelopes built in `debezium_envelopes`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from debezium_envelopes import AVRO_BALANCE, Table, column
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_assets.lib import ordering
from platform_assets.lib.contract import ContractError, parse_contract
from platform_assets.lib.decode import decode, decode_batch, event_hour, landing_hour
from platform_assets.lib.records import Change, LandingRecord, Rejected, Skipped
from platform_assets.lib.tables import raw_schema
from platform_assets.quality import raw_rules

pytestmark = pytest.mark.unit

PERSONS = [column("id", "int32", optional=False), column("name", "string"), column("age", "int32")]
POSTGRES = Table("postgresql", PERSONS)
MYSQL = Table("mysql", PERSONS, prefix="prefix", db="test_db", version="2.4.2.Final")
SQLSERVER = Table("sqlserver", PERSONS, prefix="redislabs", db="RedisConnect", version="1.6.0.Final")
FIELDS = {"id": {"type": "int", "nullable": False}, "name": {}, "age": {"type": "int"}}
T0 = 1_764_099_880_079  # 2025-11-25T19:44:40.079Z


def contract(topic: str, sequence, event_time="source.ts_ms", fields=FIELDS, **extra):
    return parse_contract(
        {
            "name": "persons",
            "source": {"format": "debezium", "topic": topic},
            "key": ["id"],
            "sequence": sequence,
            "event_time": event_time,
            "fields": fields,
            **extra,
        },
        "contracts/persons.yaml",
    )


PG = contract("pg.public.persons", "source.lsn")
MY = contract("prefix.test_db.persons", ["source.file", "source.pos", "source.row"])
MS = contract("redislabs.dbo.persons", ["source.commit_lsn", "source.change_lsn", "source.event_serial_no"])


def landed(topic: str, values: list[bytes | None], key: bytes | None = b"k") -> list[LandingRecord]:
    return [LandingRecord(topic, 0, offset, T0 + offset, key, value) for offset, value in enumerate(values)]


def rows(contract_, values):
    batch = decode_batch(contract_, landed(contract_.source.topic, values), lambda v: v)
    assert not batch.quarantined, batch.quarantined
    return batch.rows


def current(contract_, rows_):
    return {key[0]: (row["_op"], row["name"]) for key, row in ordering.newest_per_key(contract_, rows_).items()}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sequence": "source.nope"}, "envelope metadata: source.lsn, source.file"),
        ({"sequence": []}, "give a field name or a list of names"),
        ({"event_time": "source.lsn"}, "event_time `source.lsn` is a long; use one of ['source.ts_ms'"),
        ({"sequence": "ts_ms", "source": {"format": "json", "topic": "t"}}, "use `format: debezium`"),
        ({"snapshot": {"url": "http://x/persons"}}, "`snapshot` rows carry no envelope"),
        ({"fields": {**FIELDS, "amount": {"type": "decimal(40, 2)"}}}, "write `decimal(precision, scale)`"),
    ],
)
def test_envelope_positions_are_validated_with_the_fix(changes, message):
    document = {
        "name": "persons",
        "source": {"format": "debezium", "topic": "t"},
        "key": ["id"],
        "sequence": "source.lsn",
        "event_time": "source.ts_ms",
        "fields": FIELDS,
        **changes,
    }
    with pytest.raises(ContractError) as error:
        parse_contract(document, "contracts/persons.yaml")
    assert "contracts/persons.yaml" in str(error.value) and message in str(error.value)


def test_positions_are_stored_in_raw_columns_and_order_the_merge():
    assert PG.sequence_columns == ("_source_lsn",) and PG.event_time_column == "_source_ts_ms"
    assert [f.name for f in raw_schema(PG)][-7:-5] == ["_source_lsn", "_source_ts_ms"]
    assert ordering.order_columns(MY)[:3] == ("_source_file_number", "_source_pos", "_source_row")
    # An envelope position may be null (a snapshot row's change LSN), the key and event time may not.
    not_null = [r.kwargs["column"] for r in raw_rules(MS) if r.expectation == "expect_column_values_to_not_be_null"]
    assert not_null == ["id", "_source_ts_ms"]


def test_postgres_changes_carry_their_lsn_and_commit_time():
    [row] = rows(PG, [POSTGRES.change("c", None, {"id": 2, "name": "Paul", "age": 25}, T0, lsn=23043920)])
    assert row["_source_lsn"] == 23043920
    assert row["_source_ts_ms"] == datetime(2025, 11, 25, 19, 44, 40, 79000, tzinfo=UTC)
    assert row["_event_hour"] == datetime(2025, 11, 25, 19, tzinfo=UTC)


def test_records_resent_after_a_connector_restart_keep_the_newest_by_lsn():
    values = [
        POSTGRES.change("r", None, {"id": 1, "name": "John", "age": 30}, T0, snapshot="last", lsn=23043592),
        POSTGRES.change("u", None, {"id": 1, "name": "Tom", "age": 30}, T0 + 1, lsn=23044320),
        POSTGRES.change("u", None, {"id": 1, "name": "Tim", "age": 31}, T0 + 2, lsn=23044400),
        # the connector restarts from an older flushed LSN and sends the last two again
        POSTGRES.change("u", None, {"id": 1, "name": "Tom", "age": 30}, T0 + 1, lsn=23044320),
        POSTGRES.change("u", None, {"id": 1, "name": "Tim", "age": 31}, T0 + 2, lsn=23044400),
    ]
    assert current(PG, rows(PG, values)) == {1: ("update", "Tim")}
    # Without the last re-sent record, Kafka order would say Tom; the LSN says Tim.
    assert current(PG, rows(PG, values[:4])) == {1: ("update", "Tim")}


def test_updates_sharing_one_row_timestamp_are_ordered_by_lsn():
    """Row fields like updated_at repeat within one transaction; the LSN does not."""
    fields = {**FIELDS, "updated_at": {"type": "timestamp"}}
    with_row_time = contract("pg.public.persons", "source.lsn", "updated_at", fields)
    table = Table("postgresql", [*PERSONS, column("updated_at", "string", name="io.debezium.time.ZonedTimestamp")])
    moment = "2025-11-25T19:44:40Z"
    values = [
        table.change("u", None, {"id": 1, "name": name, "age": 1, "updated_at": moment}, T0, lsn=lsn)
        for name, lsn in (("a", 300), ("c", 500), ("b", 400))
    ]
    decoded = rows(with_row_time, values)
    assert current(with_row_time, decoded) == {1: ("update", "c")}
    assert decoded[0]["_event_hour"] == datetime(2025, 11, 25, 19, tzinfo=UTC)


def test_mysql_binlog_files_compare_by_their_number_across_a_rotation():
    values = [
        MYSQL.change("u", None, {"id": 1, "name": "old", "age": 1}, T0, file="mysql-bin.000009", pos=98_000),
        MYSQL.change("u", None, {"id": 1, "name": "new", "age": 1}, T0 + 1, file="mysql-bin.000010", pos=4),
        # re-sent from the older file after a restart
        MYSQL.change("u", None, {"id": 1, "name": "old", "age": 1}, T0, file="mysql-bin.000009", pos=98_000),
        # one multi-row event: rows 0 and 1 of the same position
        MYSQL.change("c", None, {"id": 2, "name": "row1", "age": 1}, T0, file="mysql-bin.000010", pos=900, row=1),
        MYSQL.change("c", None, {"id": 2, "name": "row0", "age": 1}, T0, file="mysql-bin.000010", pos=900, row=0),
    ]
    decoded = rows(MY, values)
    assert [r["_source_file_number"] for r in decoded[:2]] == [9, 10]
    assert current(MY, decoded) == {1: ("update", "new"), 2: ("create", "row1")}


def test_sql_server_orders_by_commit_then_change_lsn_then_serial_number():
    def change(name, commit, change_lsn, serial, snapshot="false"):
        after = {"id": 1, "name": name, "age": 1}
        position = {"commit_lsn": commit, "change_lsn": change_lsn, "event_serial_no": serial}
        return SQLSERVER.change("u" if change_lsn else "r", None, after, T0, snapshot=snapshot, **position)

    values = [
        change("update-2", "0000003a:00002f50:0005", "0000003a:00002f50:0002", 2),
        change("snapshot", "0000003a:00002f50:0005", None, None, snapshot="last"),
        change("update-1", "0000003a:00002f50:0005", "0000003a:00002f50:0002", 1),
    ]
    decoded = rows(MS, values)
    assert decoded[1]["_source_change_lsn"] is None  # a snapshot row has only the commit LSN
    assert current(MS, decoded) == {1: ("update", "update-2")}


def test_a_contract_for_another_connector_is_refused_with_the_position_to_use():
    decoded = decode(PG, landed("t", [MYSQL.change("c", None, {"id": 1}, T0, file="binlog.000002", pos=1)])[0])
    assert isinstance(decoded, Rejected) and decoded.error == "missing_sequence"
    assert "no `source.lsn`" in decoded.reason and "README" in decoded.reason
    bad_file = MYSQL.change("c", None, {"id": 1}, T0, file="binlog", pos=1)
    rejected = decode(MY, landed("t", [bad_file])[0])
    assert isinstance(rejected, Rejected) and rejected.error == "invalid_envelope" and "source.file" in rejected.reason


def test_kafka_offset_orders_any_format():
    plain = parse_contract(
        {
            "name": "things",
            "source": {"format": "json", "topic": "t", "operation_field": "op"},
            "key": ["id"],
            "sequence": "kafka.offset",
            "event_time": "ts",
            "fields": {"id": {}, "ts": {"type": "timestamp"}},
        }
    )
    assert ordering.order_columns(plain)[0] == "_offset" and plain.envelope_fields == ()
    decoded = decode(plain, LandingRecord("t", 0, 5, T0, b"a", b'{"id": "a", "ts": 1, "op": "u"}'))
    assert isinstance(decoded, Change) and decoded.envelope == {}


def test_a_decimal_field_stays_exact_and_refuses_what_it_cannot_hold():
    money = contract("t", "kafka.offset", fields={**FIELDS, "amount": {"type": "decimal(5, 2)"}})
    assert str(raw_schema(money).field("amount").type) == "decimal128(5, 2)"

    def amount(value):
        after = {"id": 1, "name": None, "age": None, "amount": value}
        return decode(money, landed("t", [POSTGRES.change("c", None, after, T0, lsn=1)])[0])

    assert amount("123.4").values["amount"] == Decimal("123.40")
    assert amount(7).values["amount"] == Decimal("7.00")
    assert amount(1.1).values["amount"] == Decimal("1.10")
    for bad in ("1.234", "1234.5", "NaN", True, "lots"):
        rejected = amount(bad)
        assert isinstance(rejected, Rejected) and rejected.error == "wrong_type"
        assert "must be decimal(5, 2)" in rejected.reason


CUSTOMERS = Table(
    "postgresql",
    [
        column("id", "int32", optional=False),
        column("first_name", "string", optional=False),
        column("email", "string", optional=False),
        column("nickname", "string"),
    ],
    prefix="PostgreSQL_server",
    table="customers",
)
CUSTOMER_FIELDS = {
    "id": {"type": "int", "nullable": False},
    "first_name": {"nullable": False},
    "email": {"pii": "hash", "accepted_values": ["a@x.org"]},
    "nickname": {},
}
PG_CUSTOMERS = contract("PostgreSQL_server.public.customers", "source.lsn", fields=CUSTOMER_FIELDS)


def test_a_postgres_delete_under_replica_identity_default_deletes_its_key():
    """`before` holds the key; NOT NULL columns arrive as filler ("" here), nullable ones as null."""
    ann = {"id": 1, "first_name": "Ann", "email": "a@x.org", "nickname": "an"}
    filler = {"id": 1, "first_name": "", "email": "", "nickname": None}
    values = [
        CUSTOMERS.change("c", None, ann, T0, lsn=100),
        CUSTOMERS.change("u", None, {**ann, "nickname": "annie"}, T0 + 1, lsn=200),  # before null under DEFAULT
        CUSTOMERS.change("d", filler, None, T0 + 2, lsn=46523128, last_commit_lsn="46523000"),
        None,  # the tombstone that follows
    ]
    batch = decode_batch(PG_CUSTOMERS, landed(PG_CUSTOMERS.source.topic, values, CUSTOMERS.key(id=1)), lambda v: v)
    assert batch.quarantined == [] and batch.skipped == {"tombstone": 1}
    assert [(r["_op"], r["nickname"], r["_source_lsn"]) for r in batch.rows] == [
        ("create", "an", 100),
        ("update", "annie", 200),
        ("delete", None, 46523128),
    ]
    assert batch.rows[2]["first_name"] is None and batch.rows[2]["email"] is None  # the filler is not kept
    assert ordering.live_rows(PG_CUSTOMERS, batch.rows) == {}


@pytest.mark.parametrize(
    "key",
    [CUSTOMERS.key(id=7), b'{"id": 7}'],
    ids=["schemas-enabled key", "plain JSON key"],
)
def test_a_delete_without_before_takes_its_key_from_the_kafka_key(key):
    deleted = CUSTOMERS.change("d", None, None, T0, lsn=300)
    [record] = landed(PG_CUSTOMERS.source.topic, [deleted], key)
    change = decode(PG_CUSTOMERS, record)
    assert isinstance(change, Change) and change.is_delete and change.values["id"] == 7
    assert change.envelope["_source_lsn"] == 300
    unkeyed = decode(PG_CUSTOMERS, record._replace(key=None))
    assert isinstance(unkeyed, Rejected) and unkeyed.error == "missing_key"


def test_a_key_only_delete_cannot_be_ordered_by_a_row_field_and_says_what_to_do():
    fields = {**CUSTOMER_FIELDS, "version": {"type": "long"}, "updated_at": {"type": "timestamp"}}
    by_row = contract(PG_CUSTOMERS.source.topic, "version", "updated_at", fields)
    [record] = landed(by_row.source.topic, [CUSTOMERS.change("d", {"id": 1}, None, T0, lsn=9)])
    rejected = decode(by_row, record)
    assert isinstance(rejected, Rejected) and rejected.error == "missing_sequence"
    assert "sequence: source.lsn" in rejected.reason and "REPLICA IDENTITY FULL" in rejected.reason


def test_messages_heartbeats_and_transaction_boundaries_are_skipped_and_counted():
    from debezium_envelopes import HEARTBEAT, TRANSACTION_BEGIN, TRANSACTION_END, logical_message

    values = [TRANSACTION_BEGIN, logical_message(CUSTOMERS, T0, lsn=5), HEARTBEAT, TRANSACTION_END, None]
    batch = decode_batch(PG_CUSTOMERS, landed(PG_CUSTOMERS.source.topic, values, None), lambda v: v)
    assert batch.rows == [] and batch.quarantined == []
    assert batch.skipped == {"transaction_metadata": 2, "logical_message": 1, "heartbeat": 1, "tombstone": 1}


def test_a_truncate_deletes_every_key_older_than_its_position():
    from debezium_envelopes import truncate

    values = [
        CUSTOMERS.change("c", None, {"id": 1, "first_name": "Ann", "email": "a@x.org", "nickname": None}, T0, lsn=10),
        CUSTOMERS.change("c", None, {"id": 2, "first_name": "Bo", "email": "a@x.org", "nickname": None}, T0, lsn=20),
        truncate(CUSTOMERS, T0 + 1, lsn=30),
        CUSTOMERS.change("c", None, {"id": 2, "first_name": "Cy", "email": "a@x.org", "nickname": None}, T0, lsn=40),
    ]
    batch = decode_batch(PG_CUSTOMERS, landed(PG_CUSTOMERS.source.topic, values, None), lambda v: v)
    assert batch.quarantined == [] and not batch.skipped
    assert (batch.rows[2]["_op"], batch.rows[2]["id"], batch.rows[2]["_source_lsn"]) == ("truncate", None, 30)
    newest = ordering.newest_per_key(PG_CUSTOMERS, batch.rows)
    assert (newest[(1,)]["_op"], newest[(1,)]["_source_lsn"]) == ("truncate", 30)  # deleted at the truncate
    assert {k: r["first_name"] for k, r in ordering.live_rows(PG_CUSTOMERS, batch.rows).items()} == {(2,): "Cy"}
    # The raw check requires keys on every row but a truncate.
    [key_rule] = [
        r
        for r in raw_rules(PG_CUSTOMERS)
        if r.kwargs.get("column") == "id" and r.expectation == "expect_column_values_to_not_be_null"
    ]
    assert key_rule.kwargs["row_condition"] == '_op!="truncate"'
    # Ordered by a row field, a truncate cannot be placed among the rows' changes: skipped, with the fix.
    by_row = contract(
        PG_CUSTOMERS.source.topic,
        "source.lsn",
        "nickname_at",
        {**CUSTOMER_FIELDS, "nickname_at": {"type": "timestamp"}},
    )
    skipped = decode(by_row, landed("t", [truncate(CUSTOMERS, T0, lsn=30)], None)[0])
    assert isinstance(skipped, Skipped) and skipped.kind == "truncate" and "event_time: source.ts_ms" in skipped.reason


def logical(type_: str, name: str, **parameters):
    return {"type": type_, "name": name, "version": 1, **({"parameters": parameters} if parameters else {})}


# Every encoding with the value Debezium's own tests and docs give for it (debezium.md §5).
ENCODINGS = {
    "d": (logical("int32", "io.debezium.time.Date"), 17109, "date", date(2016, 11, 4)),
    "kd": (logical("int32", "org.apache.kafka.connect.data.Date"), 17109, "date", date(2016, 11, 4)),
    "t": (logical("int32", "io.debezium.time.Time"), 49890123, "string", "13:51:30.123"),
    "kt": (logical("int32", "org.apache.kafka.connect.data.Time"), 49890123, "string", "13:51:30.123"),
    "mt": (logical("int64", "io.debezium.time.MicroTime"), 49890000000, "string", "13:51:30"),
    "midnight": (logical("int64", "io.debezium.time.MicroTime"), 86400000000, "string", "24:00:00"),
    "nt": (logical("int64", "io.debezium.time.NanoTime"), 49890123456789, "string", "13:51:30.123456"),
    "zt": (logical("string", "io.debezium.time.ZonedTime"), "11:51:30.123789Z", "string", "11:51:30.123789Z"),
    "ts": (
        logical("int64", "io.debezium.time.Timestamp"),
        1562630400000,
        "timestamp",
        datetime(2019, 7, 9, tzinfo=UTC),
    ),
    "kts": (
        logical("int64", "org.apache.kafka.connect.data.Timestamp"),
        1529476623000,
        "timestamp",
        datetime(2018, 6, 20, 6, 37, 3, tzinfo=UTC),
    ),
    "mts": (
        logical("int64", "io.debezium.time.MicroTimestamp"),
        1529507596945104,
        "timestamp",
        datetime(2018, 6, 20, 15, 13, 16, 945104, tzinfo=UTC),
    ),
    "nts": (
        logical("int64", "io.debezium.time.NanoTimestamp"),
        1529507596945104789,
        "timestamp",
        datetime(2018, 6, 20, 15, 13, 16, 945104, tzinfo=UTC),
    ),
    "zts": (
        logical("string", "io.debezium.time.ZonedTimestamp"),
        "2016-11-04T11:51:30.123456Z",
        "timestamp",
        datetime(2016, 11, 4, 11, 51, 30, 123456, tzinfo=UTC),
    ),
    "sal": (
        logical("bytes", "org.apache.kafka.connect.data.Decimal", **{"scale": "4", "connect.decimal.precision": "19"}),
        "dzWUAA==",
        "decimal(19, 4)",
        Decimal("200000.0000"),
    ),
    "negative": (
        logical("bytes", "org.apache.kafka.connect.data.Decimal", scale="2"),
        "/w==",  # -1 unscaled
        "decimal(5, 2)",
        Decimal("-0.01"),
    ),
    "dvs": (
        {"type": "struct", "name": "io.debezium.data.VariableScaleDecimal", "version": 1, "fields": []},
        {"scale": 4, "value": "AYr3"},
        "decimal(10, 4)",
        Decimal("10.1111"),
    ),
    "as_string": ({"type": "string"}, "1.10", "decimal(3, 2)", Decimal("1.10")),
    "as_double": ({"type": "double"}, 1.1, "double", 1.1),
    "doc": (logical("string", "io.debezium.data.Json"), '{"key": 123}', "string", '{"key": 123}'),
    "uid": (
        logical("string", "io.debezium.data.Uuid"),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "string",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ),
    "mood": (logical("string", "io.debezium.data.Enum", allowed="sad,ok,happy"), "ok", "string", "ok"),
}
TYPED = Table(
    "postgresql",
    [column("id", "int32", optional=False)]
    + [{**schema, "optional": True, "field": name} for name, (schema, *_) in ENCODINGS.items()],
)
TYPED_CONTRACT = contract(
    "pg.public.persons",
    "source.lsn",
    fields={"id": {"type": "int"}, **{name: {"type": spec[2]} for name, spec in ENCODINGS.items()}},
)


def test_debezium_encodings_are_read_by_the_schema_that_travels_with_the_value():
    after = {"id": 1, **{name: wire for name, (_, wire, *_) in ENCODINGS.items()}}
    [record] = landed("t", [TYPED.change("c", None, after, T0, lsn=1)])
    change = decode(TYPED_CONTRACT, record)
    assert isinstance(change, Change), change
    assert {name: change.values[name] for name in ENCODINGS} == {name: spec[3] for name, spec in ENCODINGS.items()}
    # the raw table keeps them exactly
    [row] = decode_batch(TYPED_CONTRACT, [record], lambda v: v).rows
    table = pa.Table.from_pylist([row], raw_schema(TYPED_CONTRACT))
    assert table.to_pylist()[0]["sal"] == Decimal("200000.0000") and table.to_pylist()[0]["dvs"] == Decimal("10.1111")


@pytest.mark.parametrize(
    ("name", "wire", "hint"),
    [
        ("mts", 9223372036825200000, "must be timestamp"),  # PostgreSQL 'infinity'
        ("zts", "infinity", "must be timestamp"),
        ("sal", "not base64!", "must be decimal(19, 4)"),
    ],
)
def test_an_encoding_that_cannot_be_represented_is_quarantined_with_its_field(name, wire, hint):
    [record] = landed("t", [TYPED.change("c", None, {"id": 1, name: wire}, T0, lsn=1)])
    rejected = decode(TYPED_CONTRACT, record)
    assert isinstance(rejected, Rejected) and rejected.error == "wrong_type"
    assert f"field `{name}` {hint}" in rejected.reason


def test_a_decimal_with_more_digits_than_declared_is_refused():
    money = contract("t", "source.lsn", fields={"id": {"type": "int"}, "sal": {"type": "decimal(6, 2)"}})
    [record] = landed("t", [TYPED.change("c", None, {"id": 1, "sal": "dzWUAA=="}, T0, lsn=1)])  # 200000.0000
    rejected = decode(money, record)
    assert isinstance(rejected, Rejected) and "must be decimal(6, 2)" in rejected.reason


AVRO_COLUMNS = [
    {"name": "id", "type": {"type": "int", "connect.default": 0}, "default": 0},
    {"name": "name", "type": ["null", "string"], "default": None},
    {
        "name": "updated_at",
        "type": {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"},
    },
    AVRO_BALANCE,
    {
        "name": "ratio",
        "type": [
            "null",
            {
                "type": "record",
                "name": "VariableScaleDecimal",
                "namespace": "io.debezium.data",
                "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
                "connect.doc": "Variable scaled decimal",
                "connect.version": 1,
                "connect.name": "io.debezium.data.VariableScaleDecimal",
            },
        ],
        "default": None,
    },
    {
        "name": "born",
        "type": ["null", {"type": "int", "connect.version": 1, "connect.name": "io.debezium.time.Date"}],
        "default": None,
    },
]
AVRO_FIELDS = {
    "id": {"type": "int"},
    "name": {},
    "updated_at": {"type": "timestamp"},
    "balance": {"type": "decimal(12, 2)"},
    "ratio": {"type": "decimal(10, 4)"},
    "born": {"type": "date"},
}


def avro_lookup():
    import fastavro
    from debezium_envelopes import avro_envelope_schema, avro_key_schema

    schemas = {
        1: fastavro.parse_schema(avro_envelope_schema("pg.public.persons", AVRO_COLUMNS)),
        2: fastavro.parse_schema(avro_key_schema("pg.public.persons")),
    }
    return schemas.__getitem__


def confluent_avro(schema_id: int, value: dict, lookup) -> bytes:
    import io
    import struct

    import fastavro

    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, lookup(schema_id), value)
    return b"\x00" + struct.pack(">I", schema_id) + buffer.getvalue()


def test_debezium_over_avro_decodes_the_envelope_and_its_logical_types():
    lookup = avro_lookup()
    avro_contract = contract("pg.public.persons", "source.lsn", fields=AVRO_FIELDS)
    row = {
        "id": 1,
        "name": "Ann",
        "updated_at": 1529507596945104,
        "balance": Decimal("1234.50"),
        "ratio": {"scale": 4, "value": (101111).to_bytes(3, "big", signed=True)},
        "born": 17109,
    }
    key = confluent_avro(2, {"id": 1}, lookup)
    values = [
        confluent_avro(1, POSTGRES.payload("c", None, row, T0, lsn=10), lookup),
        confluent_avro(1, POSTGRES.payload("u", None, {**row, "name": "Bo"}, T0 + 1, lsn=20), lookup),
        confluent_avro(1, POSTGRES.payload("d", None, None, T0 + 2, lsn=30), lookup),  # key from the Avro key
        None,
    ]
    batch = decode_batch(avro_contract, landed("pg.public.persons", values, key), lambda v: v, lookup)
    assert batch.quarantined == [] and batch.skipped == {"tombstone": 1}
    first = batch.rows[0]
    assert (first["updated_at"], first["balance"], first["ratio"], first["born"]) == (
        datetime(2018, 6, 20, 15, 13, 16, 945104, tzinfo=UTC),
        Decimal("1234.50"),
        Decimal("10.1111"),
        date(2016, 11, 4),
    )
    assert [(r["_op"], r["id"], r["_source_lsn"]) for r in batch.rows] == [
        ("create", 1, 10),
        ("update", 1, 20),
        ("delete", 1, 30),
    ]


def test_json_and_avro_values_of_one_topic_decode_alike():
    lookup = avro_lookup()
    row = {"id": 1, "name": "Ann", "age": None}
    as_json = decode(PG, landed("t", [POSTGRES.change("c", None, row, T0, lsn=10)])[0])
    avro_row = {"id": 1, "name": "Ann", "updated_at": 0, "balance": None, "ratio": None, "born": None}
    as_avro = decode(
        PG, landed("t", [confluent_avro(1, POSTGRES.payload("c", None, avro_row, T0, lsn=10), lookup)])[0], lookup
    )
    assert isinstance(as_avro, Change) and isinstance(as_json, Change)
    assert (as_avro.values["name"], as_avro.envelope) == (as_json.values["name"], as_json.envelope)
    unknown = decode(PG, landed("t", [b"\x00\x00\x00\x00\x63rest"])[0], lookup)
    assert isinstance(unknown, Rejected) and unknown.error == "unknown_schema_id"


@st.composite
def debezium_records(draw):
    """Change events, skipped records and broken envelopes of a PostgreSQL topic, JSON or Avro."""
    from debezium_envelopes import HEARTBEAT, TRANSACTION_BEGIN, logical_message, truncate

    op = draw(st.sampled_from(["c", "r", "u", "d"]))
    after = {"id": 1, "name": draw(st.sampled_from(["a", None, 3])), "age": None}
    ts_ms = draw(st.integers(T0, T0 + 3 * 86_400_000))
    payload = POSTGRES.payload(op, after if op == "d" else None, None if op == "d" else after, ts_ms, lsn=7)
    broken = draw(st.sampled_from([None, "no source", "null ts", "no lsn", "bad lsn"]))
    if broken == "no source":
        del payload["source"]
    elif broken == "null ts":
        payload["source"]["ts_ms"] = None
    elif broken == "no lsn":
        del payload["source"]["lsn"]
    elif broken == "bad lsn":
        payload["source"]["lsn"] = "x"
    shape = draw(st.sampled_from(["json", "avro", "tombstone", "heartbeat", "begin", "message", "truncate"]))
    value = {
        "json": json.dumps({"schema": POSTGRES.envelope_schema(), "payload": payload}).encode(),
        "avro": b"\x00\x00\x00\x00\x09garbage",
        "tombstone": None,
        "heartbeat": HEARTBEAT,
        "begin": TRANSACTION_BEGIN,
        "message": logical_message(POSTGRES, ts_ms, lsn=8),
        "truncate": truncate(POSTGRES, ts_ms, lsn=9),
    }[shape]
    return LandingRecord(PG.source.topic, 0, 0, draw(st.integers(T0, T0 + 86_400_000)), POSTGRES.key(id=1), value)


@settings(max_examples=200, deadline=None)
@given(debezium_records())
def test_landing_files_every_debezium_record_under_the_hour_raw_will_find(landed_record):
    lookup = avro_lookup()
    decoded = decode(PG, landed_record, lookup)
    assert landing_hour(PG, landed_record, lookup) == event_hour(PG, landed_record, decoded)
