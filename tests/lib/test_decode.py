"""Decoding of every wire format, and every kind of bad record going to quarantine with a reason."""

import io
import json
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_assets.lib.contract import parse_contract
from platform_assets.lib.decode import (
    decode,
    decode_batch,
    event_hour,
    landing_hour,
    landing_hours,
    named_subject,
)
from platform_assets.lib.erasure import erased_record_test
from platform_assets.lib.pii import hash_value
from platform_assets.lib.records import Change, HourRange, LandingBatch, LandingRecord, Rejected, Skipped
from platform_assets.lib.tables import QUARANTINE_SCHEMA, raw_schema, rows_table

pytestmark = pytest.mark.unit

FIELDS = {
    "id": {"type": "string", "nullable": False},
    "name": {"type": "string"},
    "amount": {"type": "double"},
    "ts": {"type": "timestamp", "nullable": False},
    "v": {"type": "long", "nullable": False},
}


def contract(source, **extra):
    return parse_contract(
        {
            "name": "things",
            "source": source,
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": FIELDS,
            **extra,
        }
    )


TOPICS = contract(
    {"format": "json", "topics": {"create": "c", "update": "u", "delete": "d"}},
)
OP_FIELD = contract({"format": "json", "topic": "things", "operation_field": "op"})
DEBEZIUM = contract({"format": "debezium", "topic": "db.things", "max_value_bytes": 2000})
AVRO = contract({"format": "avro", "topic": "things-avro", "operation_field": "op"})


def record(value, topic="c", offset=0):
    encoded = value if isinstance(value, bytes | None) else json.dumps(value).encode()
    return LandingRecord(topic, 0, offset, 1_767_225_600_000, b"k", encoded)


GOOD = {"id": "a", "name": "Ann", "amount": 1.5, "ts": "2026-01-01T10:15:00Z", "v": 3}


def test_json_topic_per_operation():
    for topic, operation in (("c", "create"), ("u", "update"), ("d", "delete")):
        decoded = decode(TOPICS, record(GOOD, topic))
        assert isinstance(decoded, Change)
        assert decoded.operation == operation
    change = decode(TOPICS, record(GOOD))
    assert change.values == {
        "id": "a",
        "name": "Ann",
        "amount": 1.5,
        "ts": datetime(2026, 1, 1, 10, 15, tzinfo=UTC),
        "v": 3,
    }


def test_json_operation_field_and_epoch_millis():
    change = decode(OP_FIELD, record({**GOOD, "op": "d", "ts": 1_767_262_500_000}, "things"))
    assert change.operation == "delete"
    assert change.values["ts"] == datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert change.extra == {}


def test_delete_needs_only_key_sequence_and_event_time():
    change = decode(TOPICS, record({"id": "a", "ts": GOOD["ts"], "v": 4}, "d"))
    assert change.is_delete and change.values["name"] is None


def test_debezium_envelope():
    after = {"op": "u", "before": {**GOOD, "v": 2}, "after": GOOD, "ts_ms": 1, "source": {"db": "x"}}
    assert decode(DEBEZIUM, record(after, "db.things")).values["v"] == 3
    deleted = decode(DEBEZIUM, record({"op": "d", "before": GOOD, "after": None}, "db.things"))
    assert deleted.operation == "delete" and deleted.values["id"] == "a"
    snapshot_read = decode(DEBEZIUM, record({"schema": {}, "payload": {"op": "r", "after": GOOD}}, "db.things"))
    assert snapshot_read.operation == "create"
    assert isinstance(decode(DEBEZIUM, record(None, "db.things")), Skipped)


AVRO_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Thing",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "name", "type": ["null", "string"], "default": None},
            {"name": "amount", "type": ["null", "double"], "default": None},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "v", "type": "long"},
            {"name": "op", "type": "string"},
        ],
    }
)


def avro_bytes(value, schema_id=7, magic=0):
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, AVRO_SCHEMA, value)
    return bytes([magic]) + struct.pack(">I", schema_id) + buffer.getvalue()


def lookup(schema_id):
    if schema_id != 7:
        raise KeyError(schema_id)
    return AVRO_SCHEMA


def test_avro_confluent_wire_format():
    value = {
        "id": "a",
        "name": None,
        "amount": 2.0,
        "ts": datetime(2026, 1, 1, 10, tzinfo=UTC),
        "v": 9,
        "op": "c",
    }
    change = decode(AVRO, record(avro_bytes(value), "things-avro"), lookup)
    assert change.operation == "create" and change.values["v"] == 9 and change.values["ts"].hour == 10


AVRO_VALUE = {
    "id": "a",
    "name": None,
    "amount": 2.0,
    "ts": datetime(2026, 1, 1, tzinfo=UTC),
    "v": 9,
    "op": "c",
}


@pytest.mark.parametrize(
    ("contract_", "value", "error", "hint"),
    [
        (TOPICS, b"{not json", "invalid_json", "valid JSON"),
        (TOPICS, b"[1, 2]", "invalid_json", "expected an object"),
        (TOPICS, {**GOOD, "amount": "lots"}, "wrong_type", "field `amount` must be double"),
        (TOPICS, {**GOOD, "v": "3"}, "wrong_type", "field `v` must be long"),
        (TOPICS, {**GOOD, "ts": "yesterday"}, "wrong_type", "field `ts` must be timestamp"),
        (TOPICS, {k: v for k, v in GOOD.items() if k != "id"}, "missing_key", "key field `id` is missing"),
        (TOPICS, {k: v for k, v in GOOD.items() if k != "v"}, "missing_sequence", "sequence field `v`"),
        (TOPICS, {k: v for k, v in GOOD.items() if k != "ts"}, "missing_event_time", "event time field `ts`"),
        (TOPICS, None, "null_value", "no value"),
        (OP_FIELD, {**GOOD, "op": "x"}, "unknown_operation", "operation field `op`"),
        (OP_FIELD, dict(GOOD), "unknown_operation", "operation field `op`"),
        (DEBEZIUM, {"op": "x", "after": GOOD}, "unknown_operation", "Debezium op"),
        (DEBEZIUM, {"before": GOOD}, "invalid_envelope", "no `op`"),
        (DEBEZIUM, {**GOOD, "name": "x" * 3000}, "oversized_value", "max_value_bytes"),
        (AVRO, avro_bytes(AVRO_VALUE, magic=1), "bad_magic_byte", "magic byte"),
        (AVRO, b"\x00\x00", "bad_magic_byte", "magic byte"),
        (AVRO, avro_bytes(AVRO_VALUE, schema_id=99), "unknown_schema_id", "schema id 99"),
        (AVRO, b"\x00\x00\x00\x00\x07\xff\xff", "invalid_avro", "does not decode"),
    ],
)
def test_bad_records_are_rejected_with_an_actionable_reason(contract_, value, error, hint):
    topic = contract_.source.topics[0]
    decoded = decode(contract_, record(value, topic), lookup)
    assert isinstance(decoded, Rejected)
    assert decoded.error == error
    assert hint in decoded.reason


# Money in plain JSON: decimal fields whose JSON numbers a double cannot hold (orjson reads numbers as doubles).
PAYMENTS = parse_contract(
    {
        "name": "payments",
        "source": {"format": "json", "topic": "payments"},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {
            "id": {"nullable": False},
            "amount": {"type": "decimal(12, 2)"},
            "balance": {"type": "decimal(38, 2)"},
            "ts": {"type": "timestamp", "nullable": False},
            "v": {"type": "long", "nullable": False},
        },
    }
)


def payment(field, number_text, topic="payments"):
    value = f'{{"id": "p", "{field}": {number_text}, "ts": "2026-01-01T10:15:00Z", "v": 1}}'.encode()
    return LandingRecord(topic, 0, 0, 1_767_225_600_000, b"p", value)


@pytest.mark.parametrize(
    ("field", "number_text", "exact"),
    [
        ("amount", "0.1", "0.10"),
        ("amount", "0.30", "0.30"),
        ("amount", "9999999999.99", "9999999999.99"),
        ("amount", "12", "12.00"),
        ("amount", "1.5E+3", "1500.00"),
        ("amount", "-0.01", "-0.01"),
        ("amount", "0.100000000000000000", "0.10"),  # trailing zeros beyond a double's digits
        ("balance", "12345678901234567.89", "12345678901234567.89"),  # a double: 12345678901234568
        ("balance", "99999999999999999999", "99999999999999999999.00"),  # beyond 64 bits: orjson reads a double
        ("balance", "123456789012345678901234567890123456.78", "123456789012345678901234567890123456.78"),
    ],
)
def test_a_json_number_is_read_into_a_decimal_exactly(field, number_text, exact):
    """A JSON number is the decimal it spells, digit for digit, whether decoded alone, in a batch or as a
    snapshot row; never the double it is closest to."""
    for landed in (payment(field, number_text), payment(field, number_text, topic="_snapshot.payments")):
        decoded = decode(PAYMENTS, landed)
        assert isinstance(decoded, Change)
        assert type(decoded.values[field]) is Decimal
        assert str(decoded.values[field]) == exact
    [row] = decode_batch(PAYMENTS, [payment(field, number_text)], lambda values: values).rows
    assert type(row[field]) is Decimal and str(row[field]) == exact


@pytest.mark.parametrize(
    "number_text",
    [
        "0.120000000000000001",  # a double: 0.12, yet the number has more digits than decimal(12, 2)
        "0.30000000000000004",  # 0.1 + 0.2 as a double, as a producer that adds doubles sends it
        "0.125",
        "12345678901",  # 13 digits with the cents
    ],
)
def test_a_json_number_that_a_decimal_field_cannot_hold_exactly_is_quarantined(number_text):
    decoded = decode(PAYMENTS, payment("amount", number_text))
    assert isinstance(decoded, Rejected) and decoded.error == "wrong_type"
    assert f"field `amount` must be decimal(12, 2) but is {number_text}" in decoded.reason
    [bad] = decode_batch(PAYMENTS, [payment("amount", number_text)], lambda values: values).quarantined
    assert bad["error"] == "wrong_type"


def test_a_batch_reads_json_numbers_of_decimal_fields_as_its_records_one_by_one():
    """Long numbers among short ones, refused ones and a record that is no JSON: the batch reads each
    decimal as `decode` reads its record alone."""
    wires = [("amount", "0.1"), ("balance", "12345678901234567.89"), ("amount", "0.120000000000000001")]
    wires += [("balance", "99999999999999999999"), ("amount", "7")]
    records = [payment(field, text)._replace(offset=offset) for offset, (field, text) in enumerate(wires)]
    records.append(records[0]._replace(offset=len(records), value=b"{nope"))
    batch = decode_batch(PAYMENTS, records, lambda values: values)
    assert (batch.rows, batch.quarantined) == _decoded_one_by_one(PAYMENTS, records)
    assert [str(row["amount"] or row["balance"]) for row in batch.rows] == [
        "0.10",
        "12345678901234567.89",
        "99999999999999999999.00",
        "7.00",
    ]
    assert [row["error"] for row in batch.quarantined] == ["wrong_type", "invalid_json"]


def test_batch_keeps_unknown_fields_and_quarantines_with_original_bytes():
    records = [
        record({**GOOD, "loyalty_tier": "gold"}, "c", 0),
        record(b"garbage", "u", 1),
        record({**GOOD, "v": 4}, "u", 2),
    ]
    batch = decode_batch(TOPICS, records, lambda values: values)
    assert [row["_offset"] for row in batch.rows] == [0, 2]
    assert json.loads(batch.rows[0]["_extra"]) == {"loyalty_tier": "gold"}
    assert batch.unknown_fields == {"loyalty_tier": 1}
    [bad] = batch.quarantined
    assert (
        bad["value"] == b"garbage" and bad["_topic"] == "u" and bad["_offset"] == 1 and bad["error"] == "invalid_json"
    )
    # A record without a decodable event time is filed under the hour of its Kafka timestamp.
    assert bad["_event_hour"] == datetime(2026, 1, 1, 0, tzinfo=UTC)


def test_a_subject_is_named_by_decoded_and_by_rejected_records_alike():
    good, wrong_type = record(GOOD, "c", 0), record({**GOOD, "amount": "lots"}, "c", 1)
    for landed in (good, wrong_type):
        assert named_subject(TOPICS, landed, decode(TOPICS, landed), "name") == "Ann"
    garbage = record(b"garbage", "c", 2)
    assert named_subject(TOPICS, garbage, decode(TOPICS, garbage), "name") is None
    # The erasure test of `raw` drops a record whatever else is wrong with it.
    batch = decode_batch(
        TOPICS,
        [good, wrong_type, record({**GOOD, "name": "Bo"}, "u", 3)],
        lambda values: values,
        is_erased=lambda landed, decoded: named_subject(TOPICS, landed, decoded, "name") == "Ann",
    )
    assert batch.erased == 2 and [row["_offset"] for row in batch.rows] == [3] and not batch.quarantined


def test_a_batch_quarantines_an_array_or_object_where_a_number_belongs():
    """A JSON array or object in a number field cannot be hashed to find its conversion: the batch
    decode raised TypeError on it and failed the whole `raw` run, where `decode` quarantines the record."""
    records = [
        record({**GOOD, "v": [3]}, offset=0),
        record({**GOOD, "id": "b", "amount": {"value": 1.5}}, offset=1),
        record({**GOOD, "id": "c"}, offset=2),
    ]

    batch = decode_batch(TOPICS, records, lambda values: values)

    assert [row["id"] for row in batch.rows] == ["c"]
    assert [row["_offset"] for row in batch.quarantined] == [0, 1]
    assert (batch.rows, batch.quarantined) == _decoded_one_by_one(TOPICS, records)


def test_without_an_erasure_list_raw_has_no_erasure_test_to_run():
    """With no test, `decode_batch` reads plain JSON changes field by field; a test that always says
    "not erased" made it build and check every change one by one (4-5 s of 714k records)."""
    assert erased_record_test(TOPICS, {}, b"secret") is None
    assert erased_record_test(TOPICS, {"things": set()}, b"secret") is None
    erased = erased_record_test(TOPICS, {"things": {hash_value("a", b"secret")}}, b"secret")
    assert erased is not None
    assert erased(record(GOOD), decode(TOPICS, record(GOOD)))
    assert not erased(record({**GOOD, "id": "b"}), decode(TOPICS, record({**GOOD, "id": "b"})))


def test_decoding_is_deterministic_whatever_the_input_order():
    records = [record({**GOOD, "v": i}, "u", i) for i in range(20)]
    forward = decode_batch(TOPICS, records, lambda values: values)
    backward = decode_batch(TOPICS, list(reversed(records)), lambda values: values)
    assert forward.rows == backward.rows


def test_a_rejected_record_with_a_readable_event_time_is_filed_under_its_event_hour():
    [bad] = decode_batch(TOPICS, [record({**GOOD, "amount": "lots"}, "c", 0)], lambda values: values).quarantined
    assert bad["error"] == "wrong_type"
    assert bad["_event_hour"] == datetime(2026, 1, 1, 10, tzinfo=UTC)


FIRST_HOUR = datetime(2026, 1, 1, tzinfo=UTC)
LANDED_AT = datetime(2026, 1, 2, 10, 20, tzinfo=UTC)
IN_RANGE_KAFKA_MS = 1_767_261_600_000  # 2026-01-01T10:00Z


@pytest.mark.parametrize(
    ("event_time", "kafka_ms", "filed_under"),
    [
        ("2025-12-31T23:59:00Z", IN_RANGE_KAFKA_MS, datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2099-01-01T00:00:00Z", IN_RANGE_KAFKA_MS, datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (-1000, IN_RANGE_KAFKA_MS, datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-02T11:00:00Z", IN_RANGE_KAFKA_MS, datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2099-01-01T00:00:00Z", 4_070_908_800_000, datetime(2026, 1, 2, 10, tzinfo=UTC)),  # Kafka time 2099 too
        (-1000, -1000, FIRST_HOUR),  # Kafka time before the first partition too
    ],
)
def test_an_event_time_outside_the_partitions_is_quarantined_in_a_partition_that_exists(
    event_time, kafka_ms, filed_under
):
    """Partitions run from the first hour (PLATFORM_START) to the hour the record landed in; a record
    filed outside them would never be read by raw, so it is quarantined under an hour that exists."""
    landed = LandingRecord(
        "c", 0, 7, kafka_ms, b"k", json.dumps({**GOOD, "ts": event_time}).encode(), landed_at=LANDED_AT
    )
    batch = decode_batch(TOPICS, [landed], lambda values: values, first_hour=FIRST_HOUR)
    assert not batch.rows
    [quarantined] = batch.quarantined
    assert quarantined["error"] == "event_time_out_of_range"
    for named in ("`ts`", "2026-01-01 00:00", "2026-01-02 10:00", "PLATFORM_START", "publish"):
        assert named in quarantined["reason"]
    assert quarantined["_event_hour"] == filed_under
    hours = HourRange(FIRST_HOUR, datetime(2026, 1, 2, 10, tzinfo=UTC))
    assert landing_hour(TOPICS, landed, None, hours) == filed_under


def test_an_event_time_in_the_hour_the_record_landed_is_in_range():
    landed = LandingRecord(
        "c",
        0,
        7,
        IN_RANGE_KAFKA_MS,
        b"k",
        json.dumps({**GOOD, "ts": "2026-01-02T10:59:00Z"}).encode(),
        landed_at=LANDED_AT,
    )
    batch = decode_batch(TOPICS, [landed], lambda values: values, first_hour=FIRST_HOUR)
    assert [row["_event_hour"] for row in batch.rows] == [datetime(2026, 1, 2, 10, tzinfo=UTC)]


# Wire values that each field may carry: right, wrong, absent (None) or borderline.
WIRE_VALUES = {
    "id": st.sampled_from(["a", "b", 7, None, ""]),
    "name": st.sampled_from(["Ann", None, 3, True]),
    "amount": st.sampled_from([1.5, 0, "lots", None, 1e308, True, [1.5], {"value": 1.5}]),
    "ts": st.sampled_from(
        [
            "2026-01-01T10:15:00Z",
            "2026-01-01T23:59:59+02:00",
            "2026-01-02",
            1_767_225_600_000,
            "yesterday",
            None,
            1.5,
            "2025-12-31T23:59:59Z",
            "2099-01-01T00:00:00Z",
            -1000,
        ]
    ),
    "v": st.sampled_from([3, 2**63, -1, "3", None, False, [3], {"v": 3}]),
    "op": st.sampled_from(["c", "u", "d", "r", "x", None]),
}


@st.composite
def landed_records(draw):
    contract_ = draw(st.sampled_from([TOPICS, OP_FIELD, DEBEZIUM, AVRO]))
    payload = {name: draw(values) for name, values in WIRE_VALUES.items()}
    payload = {name: value for name, value in payload.items() if value is not None}
    shape = draw(st.sampled_from(["object", "not_json", "array", "null", "snapshot", "oversized"]))
    topic = draw(st.sampled_from(list(contract_.source.topics)))
    if shape == "object" and contract_ is DEBEZIUM:
        value = json.dumps({"op": payload.pop("op", "u"), "after": payload, "before": payload}).encode()
    elif shape == "object" and contract_ is AVRO:
        value = draw(st.sampled_from([avro_bytes(AVRO_VALUE), avro_bytes(AVRO_VALUE, schema_id=99), b"\x01xyz"]))
    elif shape == "object":
        value = json.dumps(payload).encode()
    elif shape == "oversized":
        value = json.dumps({**payload, "name": "x" * 3000}).encode()
    else:
        value = {"not_json": b"{nope", "array": b"[1]", "null": None, "snapshot": json.dumps(payload).encode()}[shape]
        topic = "_snapshot.things" if shape == "snapshot" else topic
    timestamp_ms = draw(st.integers(1_767_225_600_000 - 86_400_000, 1_767_225_600_000 + 3 * 86_400_000))
    landed_at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    return contract_, LandingRecord(topic, 0, 0, timestamp_ms, b"k", value, landed_at=landed_at)


@settings(max_examples=400, deadline=None)
@given(landed_records())
def test_landing_files_every_record_under_the_hour_raw_will_find(case):
    """Landing takes the hour without decoding every field; raw decodes in full. If they disagreed, a
    record would be read into a raw partition its hour does not belong to."""
    contract_, landed = case
    assert landing_hour(contract_, landed, lookup) == event_hour(contract_, landed, decode(contract_, landed, lookup))
    assert landed.landed_at is not None
    hours = HourRange(FIRST_HOUR, landed.landed_at.replace(minute=0))
    filed = landing_hour(contract_, landed, lookup, hours)
    assert filed == event_hour(contract_, landed, decode(contract_, landed, lookup), hours)
    assert hours.first <= filed <= hours.last
    batch = decode_batch(contract_, [landed], lambda values: values, lookup, first_hour=FIRST_HOUR)
    assert [row["_event_hour"] for row in batch.rows + batch.quarantined] in ([filed], [])  # [] when skipped


# Event times in the forms producers write, and forms that only Python reads or nobody does.
ISO_FORMS = st.builds(
    lambda moment, separator, seconds, fraction, zone: (
        moment.strftime(f"%Y-%m-%d{separator}%H")
        + (moment.strftime(":%M:%S") if seconds else moment.strftime(":%M"))
        + (f".{moment.microsecond:06d}"[: fraction + 1] if seconds and fraction else "")
        + zone
    ),
    st.datetimes(datetime(2025, 12, 30), datetime(2026, 1, 5)),
    st.sampled_from(["T", " "]),
    st.booleans(),
    st.integers(0, 7),
    st.sampled_from(["", "Z", "+00:00", "-03:30", "+0530", "+05", "+14:00", "z"]),
) | st.sampled_from(
    [
        "2026-02-30T10:00:00Z",
        "2026-01-01T24:00:00",
        "2026-01-01T10:00:60Z",
        "2026-01-01",
        "20260101T101500Z",
        "2026-W01-3T10:00",
        "2026-01-01T10:15:00.1234567Z",
        "2026-01-01T10:15:00+24:00",
        "yesterday",
        "",
    ]
)


# Values that one JSON reader accepts and another may not (orjson decides: it is what `raw` reads with),
# each made from a payload's JSON text.
UNUSUAL_JSON = [
    lambda text: text[:-1] + ', "x": NaN}',
    lambda text: text[:-1] + ', "x": -Infinity}',
    lambda text: text[:-1] + ', "x": 123456789012345678901234567890}',
    lambda text: text.encode()[:-1] + b', "x": "\xff"}',  # not UTF-8
    lambda text: text[:-1] + ', "x": "\\ud800"}',  # a lone surrogate
    lambda text: text[:-1] + ', "x": ' + "[" * 1100 + "]" * 1100 + "}",  # deeper than orjson reads
    lambda text: text[:-1] + ', "x": ' + "[" * 500 + "]" * 500 + "}",
    lambda text: text + " " + text,  # two documents
    lambda text: text + "{}",
    lambda text: " ",
    lambda text: "",
    lambda text: "\ufeff" + text,  # a byte order mark
    lambda text: json.dumps(json.loads(text), indent=2),  # printed over several lines
    lambda text: text[:-1] + ', "ts": "2026-01-01T10:00:00Z"}' if len(text) > 2 else text,  # a name twice
    lambda text: text[:-1] + ', "nested": {"ts": "2026-01-01T10:00:00Z"}}' if len(text) > 2 else text,
]


@st.composite
def landed_batches(draw):
    contract_ = draw(st.sampled_from([TOPICS, OP_FIELD, DEBEZIUM]))
    records = []
    for offset in range(draw(st.integers(0, 12))):
        payload = {name: draw(values) for name, values in WIRE_VALUES.items()}
        payload["ts"] = draw(st.one_of(ISO_FORMS, st.just(payload["ts"]), st.integers(-(2**63), 2**63)))
        payload = {name: value for name, value in payload.items() if value is not None}
        shape = draw(
            st.sampled_from(["object", "object", "object", "not_json", "array", "null", "snapshot", "unusual"])
        )
        topic = draw(st.sampled_from([*contract_.source.topics, "elsewhere"]))
        if shape == "object" and contract_ is DEBEZIUM:
            value = json.dumps({"op": payload.pop("op", "u"), "after": payload}).encode()
        elif shape == "object":
            value = json.dumps(payload).encode()
        elif shape == "unusual":
            made = draw(st.sampled_from(UNUSUAL_JSON))(json.dumps(payload))
            value = made if isinstance(made, bytes) else made.encode()
        else:
            value = {"not_json": b"{nope", "array": b"[1]", "null": None, "snapshot": json.dumps(payload).encode()}[
                shape
            ]
            topic = "_snapshot.things" if shape == "snapshot" else topic
        timestamp_ms = draw(st.integers(1_767_225_600_000 - 86_400_000, 1_767_225_600_000 + 3 * 86_400_000))
        records.append(LandingRecord(topic, 0, offset, timestamp_ms, b"k", value))
    return contract_, records


@settings(max_examples=300, deadline=None)
@given(landed_batches())
def test_landing_files_a_whole_batch_under_the_hours_it_files_each_record(case):
    """Landing finds the hours of a batch in Arrow; each must be the hour of the record on its own."""
    contract_, records = case
    hours = HourRange(FIRST_HOUR, LANDED_AT.replace(minute=0))
    filed = landing_hours(contract_, LandingBatch.of(records), lookup, hours).to_pylist()
    assert filed == [landing_hour(contract_, landed, lookup, hours) for landed in records]


def _decoded_one_by_one(contract_, records):
    """What `decode_batch` must make of a batch: `decode`, `event_hour` and the row layout, record by record."""
    rows, quarantined = [], []
    for landed in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        decoded = decode(contract_, landed, lookup)
        position = {
            "_topic": landed.topic,
            "_partition": landed.partition,
            "_offset": landed.offset,
            "_kafka_timestamp": datetime.fromtimestamp(landed.timestamp_ms / 1000, tz=UTC),
            "_event_hour": event_hour(contract_, landed, decoded),
        }
        if isinstance(decoded, Rejected):
            quarantined.append(
                {**position, "key": landed.key, "value": landed.value, "error": decoded.error, "reason": decoded.reason}
            )
        elif isinstance(decoded, Change):
            extra = json.dumps(decoded.extra, sort_keys=True, default=str) if decoded.extra else None
            rows.append({"_op": decoded.operation, **decoded.values, "_extra": extra, **decoded.envelope, **position})
    return rows, quarantined


@settings(max_examples=300, deadline=None)
@given(landed_batches())
def test_a_batch_decodes_as_its_records_decode_one_by_one(case):
    """`decode_batch` reads plain JSON changes field by field over the whole batch; every row and
    quarantine row must be what decoding each record on its own makes of it."""
    contract_, records = case
    batch = decode_batch(contract_, records, lambda values: values, lookup)
    assert (batch.rows, batch.quarantined) == _decoded_one_by_one(contract_, records)
    # Written column by column, as Arrow writes the rows (a key a row lacks reads null).
    for rows, schema in ((batch.rows, raw_schema(contract_)), (batch.quarantined, QUARANTINE_SCHEMA)):
        assert rows_table(rows, schema).equals(pa.Table.from_pylist(rows, schema))
    # Raw writes the batch's own table, whose platform columns never were row dicts.
    assert batch.table(raw_schema(contract_)).equals(pa.Table.from_pylist(batch.rows, raw_schema(contract_)))
