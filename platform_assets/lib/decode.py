"""Decoding of landed Kafka records into typed changes, as pure functions of the record bytes.

Everything that can go wrong with a record becomes a `Rejected` with a reason a person can act on;
nothing raises for bad data, so one poisoned record never blocks a partition and nothing is lost.
"""

from __future__ import annotations

import io
import json
import math
import struct
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from functools import cached_property, partial
from itertools import repeat
from operator import attrgetter, eq, itemgetter, setitem
from typing import Any

import orjson
import platform_native
import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib import columns
from platform_assets.lib.collector import collector_paused
from platform_assets.lib.connect_types import ColumnTypes, avro_column_types, json_column_types, logical_value
from platform_assets.lib.contract import (
    ENVELOPE_FIELDS,
    MAX_DECIMAL_PRECISION,
    Contract,
    EnvelopeField,
    FieldSpec,
)
from platform_assets.lib.records import (
    KAFKA_POSITION,
    KAFKA_POSITION_COLUMNS,
    SNAPSHOT_TOPIC_PREFIX,
    TRUNCATE,
    Change,
    Decoded,
    HourRange,
    LandingBatch,
    LandingRecord,
    Rejected,
    Skipped,
    hour_floor,
    is_snapshot,
    is_snapshot_topic,
    kafka_moment,
    kafka_time,
    position_columns,
)
from platform_assets.lib.tables import TIMESTAMP, columns_table

# Resolves a Confluent schema id to a parsed Avro schema; raises KeyError for an unknown id.
SchemaLookup = Callable[[int], Any]

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
AVRO_MAGIC_BYTE = 0


class _Reject(Exception):
    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


def _describe(value: Any) -> str:
    if isinstance(value, Decimal):  # a JSON number read exactly: as written, not as a JSON string
        text = str(value)
    else:
        text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)  # Python 3.11 reads every ISO 8601 form, "Z" included
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError


def _parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError


def _in_range(value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise ValueError
    return value


def _as_double(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not math.isfinite(value):
        raise ValueError
    return float(value)


def _as_decimal(spec: FieldSpec, value: Any) -> Decimal:
    """An exact decimal with the field's scale; a value that would need rounding or more digits is
    refused (the reason names the declared precision and scale)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError
    number = Decimal(repr(value) if isinstance(value, float) else str(value) if isinstance(value, int) else value)
    assert spec.precision is not None and spec.scale is not None
    if not number.is_finite():
        raise ValueError
    exact = number.quantize(Decimal(1).scaleb(-spec.scale), context=Context(prec=MAX_DECIMAL_PRECISION + 2))
    if exact != number or len(exact.as_tuple().digits) > spec.precision:
        raise ValueError
    return exact


def _as_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _as_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _as_string,
    "int": lambda v: _in_range(v, INT32),
    "long": lambda v: _in_range(v, INT64),
    "double": _as_double,
    "boolean": _as_boolean,
    "timestamp": _parse_timestamp,
    "date": _parse_date,
}


def _wrong_type(spec: FieldSpec, value: Any) -> _Reject:
    declared = f"decimal({spec.precision}, {spec.scale})" if spec.type == "decimal" else spec.type
    return _Reject(
        "wrong_type",
        f"field `{spec.name}` must be {declared} but is {_describe(value)}; "
        "fix the producer or change the field's type in the contract",
    )


def _json_object(value: bytes) -> dict[str, Any]:
    """orjson, not `json`: a third of the decode time went to `json.loads`. It is stricter (no NaN,
    BOM or lone surrogates: invalid JSON anyway) and reads integers beyond 64 bits as floats, which
    no contract type accepts as an integer."""
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise _Reject(
            "invalid_json", f"value is not valid JSON ({error}); the producer must send UTF-8 JSON"
        ) from error
    if not isinstance(payload, dict):
        raise _Reject("invalid_json", f"value is JSON {type(payload).__name__}, expected an object")
    return payload


# Every digit and point of a JSON value as "1", every other byte as "0" (`bytes.translate`, a tenth of
# what a regular expression takes). A value without a run of 16 holds no number of more than 15
# significant digits, and such a number is exactly the shortest text of the double orjson reads it as
# (a double keeps 15 significant digits), which `_as_decimal` takes; any other number is read from its text.
_DIGITS_AND_POINTS = bytes(ord("1") if chr(byte) in "0123456789." else ord("0") for byte in range(256))
_LONG_NUMBER = b"1" * 16


def _has_long_number(value: bytes) -> bool:
    return _LONG_NUMBER in value.translate(_DIGITS_AND_POINTS)


def _with_exact_decimals(contract: Contract, value: bytes, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with the JSON numbers of its decimal fields exactly as written.

    orjson reads every number with a fraction, and every integer beyond 64 bits, as a double, which
    holds about 16 significant digits: `12345678901234567.89` would become `12345678901234568`, and
    `0.120000000000000001` (too many digits for decimal(12, 2), so refused) would pass as 0.12. Those
    records are read again by `json`, numbers as Decimal; the rest (nearly all) keep orjson's speed.
    """
    if _has_long_number(value) and any(type(payload.get(name)) is float for name in contract.decimal_names):
        exact = json.loads(value, parse_float=Decimal)
        for name in contract.decimal_names:
            if type(payload.get(name)) is float:
                payload[name] = exact[name]
    return payload


def _operation_from_field(contract: Contract, payload: dict[str, Any]) -> str:
    source = contract.source
    if source.operation_field is None:
        return "create"
    wire = payload.pop(source.operation_field, None)
    operation = source.operation_values.get(str(wire)) if wire is not None else None
    if operation is None:
        raise _Reject(
            "unknown_operation",
            f"operation field `{source.operation_field}` is {_describe(wire)}; "
            f"expected one of {sorted(source.operation_values)}",
        )
    return operation


_DEBEZIUM_OPERATIONS = {"c": "create", "r": "create", "u": "update", "d": "delete", "t": TRUNCATE}
# Debezium records that carry no change of a row, by what they are.
_DEBEZIUM_SKIPPED_OPERATIONS = {
    "m": ("logical_message", "PostgreSQL logical decoding message (op m): not a change of a row"),
}
_UNORDERED_TRUNCATE = (
    "truncate",
    "truncate (op t) not applied: it has no key, so only the source position orders it against the rows' "
    "changes; set `sequence` and `event_time` to the envelope (e.g. `sequence: source.lsn`, "
    "`event_time: source.ts_ms`)",
)


class _Skip(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _not_a_change(payload: dict[str, Any], schema: Any) -> _Skip | None:
    """Heartbeats and transaction boundaries, which Debezium sends beside the change events."""
    name = schema.get("name", "") if isinstance(schema, dict) else ""
    if name == "io.debezium.connector.common.Heartbeat" or (name == "" and payload.keys() == {"ts_ms"}):
        return _Skip("heartbeat", "Debezium heartbeat: carries only the connector's progress")
    if payload.get("status") in ("BEGIN", "END") and "id" in payload:
        return _Skip("transaction_metadata", f"Debezium transaction {payload['status']} of {payload['id']}")
    return None


def _debezium_value(contract: Contract, record: LandingRecord, schema_lookup: SchemaLookup | None) -> _Parsed:
    """A Debezium value as the AvroConverter (Confluent wire format: it starts with the magic byte 0,
    which no JSON text does) or the JsonConverter wrote it."""
    assert record.value is not None
    if record.value[:1] == bytes([AVRO_MAGIC_BYTE]):
        envelope, schema = _avro_with_schema(record.value, schema_lookup)
        return _debezium(contract, record, envelope, avro_column_types(schema), schema_lookup)
    return _debezium_json(contract, record, _json_object(record.value))


def _debezium_json(contract: Contract, record: LandingRecord, payload: dict[str, Any]) -> _Parsed:
    """A JsonConverter value, with its schema (`{"schema": .., "payload": ..}`) or without."""
    if "schema" not in payload:
        return _debezium(contract, record, payload, {})
    envelope, schema = payload.get("payload"), payload.get("schema")
    if isinstance(envelope, dict) and "op" not in envelope:
        skip = _not_a_change(envelope, schema)
        if skip is not None:
            raise skip
    return _debezium(contract, record, envelope, json_column_types(schema))


def _debezium(
    contract: Contract,
    record: LandingRecord,
    envelope: Any,
    column_types: ColumnTypes,
    schema_lookup: SchemaLookup | None = None,
) -> _Parsed:
    """The change in a Debezium envelope (before/after/op/source), whichever converter wrote it."""
    if not isinstance(envelope, dict) or "op" not in envelope:
        skip = _not_a_change(envelope, None) if isinstance(envelope, dict) else None
        if skip is not None:
            raise skip
        raise _Reject("invalid_envelope", "Debezium value has no `op`; expected the before/after/op envelope")
    wire_operation = str(envelope["op"])
    if wire_operation in _DEBEZIUM_SKIPPED_OPERATIONS:
        raise _Skip(*_DEBEZIUM_SKIPPED_OPERATIONS[wire_operation])
    operation = _DEBEZIUM_OPERATIONS.get(wire_operation)
    if operation is None:
        raise _Reject("unknown_operation", f"Debezium op {_describe(envelope['op'])} is not one of c, r, u, d, t, m")
    if wire_operation == "t":
        if not contract.orders_by_source_position:
            raise _Skip(*_UNORDERED_TRUNCATE)
        return _Parsed(TRUNCATE, {}, _envelope_values(contract, envelope))
    positions = _envelope_values(contract, envelope)
    if operation == "delete":
        row = _deleted_row(contract, record, envelope.get("before"), schema_lookup)
        return _Parsed(operation, row, positions, column_types, key_only=True)
    image = envelope.get("after")
    if not isinstance(image, dict):
        raise _Reject("invalid_envelope", f"Debezium op `{wire_operation}` needs an `after` object")
    return _Parsed(operation, dict(image), positions, column_types)


def _deleted_row(
    contract: Contract, record: LandingRecord, before: Any, schema_lookup: SchemaLookup | None
) -> dict[str, Any]:
    """The row a delete names. Under PostgreSQL's default REPLICA IDENTITY its `before` holds only
    the key (other columns null or a type's filler such as "" or 0), and a table without one sends no
    `before`: the key is then read from the Kafka record key."""
    row = dict(before) if isinstance(before, dict) else {}
    if any(row.get(name) is None for name in contract.key):
        key = _record_key(record, schema_lookup)
        row.update({name: value for name, value in key.items() if row.get(name) is None})
    return row


def _record_key(record: LandingRecord, schema_lookup: SchemaLookup | None) -> dict[str, Any]:
    """A Debezium Kafka key: Avro (Confluent wire format), JSON with its schema
    (`{"schema": .., "payload": {"id": 1}}`) or a plain JSON object."""
    if record.key is None:
        return {}
    if record.key[:1] == bytes([AVRO_MAGIC_BYTE]):
        try:
            return _avro(record.key, schema_lookup)
        except _Reject:
            return {}
    try:
        key = orjson.loads(record.key)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(key, dict) and "schema" in key and isinstance(key.get("payload"), dict):
        key = key["payload"]
    return key if isinstance(key, dict) else {}


def _binlog_number(file: Any) -> int:
    """A MySQL binlog file's numeric suffix: `mysql-bin.000010` comes after `mysql-bin.000009` and
    `mysql-bin.1000111` after `mysql-bin.200001`, as Debezium itself compares them."""
    return int(_as_string(file).rsplit(".", 1)[1])


_ENVELOPE_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "source.file": _binlog_number,
    "source.ts_us": lambda v: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=_in_range(v, INT64)),
    "source.ts_ms": lambda v: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=_in_range(v, INT64)),
    "ts_ms": lambda v: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=_in_range(v, INT64)),
}


def _envelope_value(contract: Contract, spec: EnvelopeField, envelope: dict[str, Any]) -> Any:
    role = "event time" if spec.path == contract.event_time else "sequence"
    error = "missing_event_time" if role == "event time" else "missing_sequence"
    *parents, name = spec.path.split(".")
    holder: Any = envelope
    for parent in parents:
        holder = holder.get(parent) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or name not in holder:
        raise _Reject(
            error,
            f"the Debezium envelope has no `{spec.path}`, the contract's {role} ({spec.doc}); "
            "name the position this connector sends (see the README's Debezium section)",
        )
    wire = holder[name]
    if wire is None:
        if role == "event time":
            raise _Reject(error, f"`{spec.path}`, the contract's event time, is null")
        return None  # ordered before every known position (e.g. a SQL Server snapshot row's change_lsn)
    try:
        return _ENVELOPE_CONVERTERS.get(spec.path, _CONVERTERS[spec.type])(wire)
    except (ValueError, TypeError, OverflowError, IndexError) as failure:
        raise _Reject(
            "invalid_envelope", f"`{spec.path}` is {_describe(wire)}, not a {spec.type} ({spec.doc})"
        ) from failure


def _envelope_values(contract: Contract, envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope metadata the contract orders or times changes by, by raw column."""
    return {spec.column: _envelope_value(contract, spec, envelope) for spec in contract.envelope_fields}


def _avro(value: bytes, schema_lookup: SchemaLookup | None) -> dict[str, Any]:
    return _avro_with_schema(value, schema_lookup)[0]


def _avro_with_schema(value: bytes, schema_lookup: SchemaLookup | None) -> tuple[dict[str, Any], Any]:
    """A Confluent wire-format Avro record and the (parsed) writer schema it was read with."""
    import fastavro

    if len(value) < 5 or value[0] != AVRO_MAGIC_BYTE:
        raise _Reject(
            "bad_magic_byte",
            "value does not start with the Confluent magic byte 0 and a 4-byte schema id; "
            "the producer must use the Confluent Avro serializer",
        )
    (schema_id,) = struct.unpack(">I", value[1:5])
    if schema_lookup is None:
        raise _Reject(
            "unknown_schema_id", f"schema id {schema_id}: no schema registry configured (SCHEMA_REGISTRY_URL)"
        )
    try:
        schema = schema_lookup(schema_id)
    except Exception as error:
        raise _Reject(
            "unknown_schema_id", f"schema id {schema_id} is not in the schema registry ({error}); register it"
        ) from error
    try:
        record = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)
    except Exception as error:
        raise _Reject("invalid_avro", f"value does not decode with schema id {schema_id}: {error}") from error
    if not isinstance(record, dict):
        raise _Reject("invalid_avro", f"schema id {schema_id} does not describe a record")
    return record, schema


@dataclass(frozen=True)
class _Parsed:
    """A record's operation, its row as sent, and the envelope metadata the contract names (by column)."""

    operation: str
    row: dict[str, Any]
    envelope: dict[str, Any] = field(default_factory=dict)
    # Debezium: the logical type of each column (microseconds, a decimal's scale, ...) by column name.
    column_types: ColumnTypes = field(default_factory=dict)
    # A Debezium delete: only the key (and a row-field sequence or event time) of `row` are trusted.
    key_only: bool = False


def _payload(contract: Contract, record: LandingRecord, schema_lookup: SchemaLookup | None) -> _Parsed:
    source = contract.source
    assert record.value is not None
    if is_snapshot(record):
        return _Parsed("create", _with_exact_decimals(contract, record.value, _json_object(record.value)))
    if source.format == "json":
        payload = _with_exact_decimals(contract, record.value, _json_object(record.value))
        if source.topics_by_operation:
            operation = next((op for op, topic in source.topics_by_operation.items() if topic == record.topic), None)
            if operation is None:
                raise _Reject(
                    "unknown_topic",
                    f"topic `{record.topic}` is not one of the contract's topics {sorted(source.topics)}",
                )
            return _Parsed(operation, payload)
        return _Parsed(_operation_from_field(contract, payload), payload)
    if source.format == "debezium":
        return _debezium_value(contract, record, schema_lookup)
    payload = _avro(record.value, schema_lookup)
    return _Parsed(_operation_from_field(contract, payload), payload)


def decode(contract: Contract, record: LandingRecord, schema_lookup: SchemaLookup | None = None) -> Decoded:
    """Decode one landed record; PII is not applied here (see `pii.protect`)."""
    if record.value is None:
        if contract.source.format == "debezium":
            return Skipped("tombstone", "Kafka tombstone after a Debezium delete")
        return Rejected("null_value", "record has no value; producers must send a JSON body for every change")
    if len(record.value) > contract.source.max_value_bytes:
        return Rejected(
            "oversized_value",
            f"value is {len(record.value)} bytes, above the contract's max_value_bytes "
            f"{contract.source.max_value_bytes}; raise the limit in the contract or split the record",
        )
    try:
        parsed = _payload(contract, record, schema_lookup)
    except _Reject as rejection:
        return Rejected(rejection.error, rejection.reason)
    except _Skip as skip:
        return Skipped(skip.kind, skip.reason)
    try:
        return _typed_change(contract, parsed)
    except _Reject as rejection:
        return Rejected(rejection.error, rejection.reason, _readable_event_time(contract, parsed))


# Wire values a field type takes as they are, with no conversion: (exact Python type, inclusive bounds).
_TAKEN_AS_SENT: dict[str, tuple[type, tuple[int, int] | None]] = {
    "string": (str, None),
    "int": (int, INT32),
    "long": (int, INT64),
    "boolean": (bool, None),
}


@dataclass(frozen=True)
class _FieldPlan:
    """What `_typed_change` needs of one field, worked out once per contract (it runs for every field of
    every record)."""

    spec: FieldSpec
    taken_as: type | None  # a wire value of exactly this type (within `bounds`) is the value
    bounds: tuple[int, int] | None
    convert: Callable[[Any], Any]  # any other wire value: the value, or ValueError/TypeError
    identity: bool  # key, sequence or event time: kept on a key-only delete, never checked against accepted values
    accepted_values: tuple[Any, ...] | None


_plans: dict[int, tuple[Contract, tuple[_FieldPlan, ...]]] = {}


def _field_plans(contract: Contract) -> tuple[_FieldPlan, ...]:
    cached = _plans.get(id(contract))
    if cached is not None and cached[0] is contract:
        return cached[1]
    plans = tuple(
        _FieldPlan(
            spec,
            taken_as=_TAKEN_AS_SENT[spec.type][0] if spec.type in _TAKEN_AS_SENT else None,
            bounds=_TAKEN_AS_SENT[spec.type][1] if spec.type in _TAKEN_AS_SENT else None,
            convert=partial(_as_decimal, spec) if spec.type == "decimal" else _CONVERTERS[spec.type],
            identity=spec.name in contract.key or spec.name in contract.identity_fields,
            accepted_values=None if spec.name in contract.identity_fields else spec.accepted_values,
        )
        for spec in contract.fields
    )
    _plans[id(contract)] = (contract, plans)
    return plans


def _typed_change(contract: Contract, parsed: _Parsed) -> Change:
    operation, payload = parsed.operation, parsed.row
    if operation == TRUNCATE:  # no row: every key older than its position is deleted
        return Change(operation, dict.fromkeys(spec.name for spec in contract.fields), {}, parsed.envelope)
    values: dict[str, Any] = {}
    column_types = parsed.column_types
    for plan in _field_plans(contract):  # this loop runs for every field of every record
        spec = plan.spec
        wire = payload.get(spec.name) if plan.identity or not parsed.key_only else None
        if wire is None:
            _may_be_absent(contract, spec, operation)
            values[spec.name] = None
            continue
        if (
            type(wire) is plan.taken_as
            and not column_types
            and (plan.bounds is None or plan.bounds[0] <= wire <= plan.bounds[1])
        ):
            value = wire
        else:
            try:
                value = plan.convert(logical_value(wire, column_types.get(spec.name)) if column_types else wire)
            except (ValueError, TypeError, OverflowError, InvalidOperation) as error:
                raise _wrong_type(spec, wire) from error
        if plan.accepted_values is not None and value not in plan.accepted_values:
            raise _Reject(
                "unaccepted_value",
                f"field `{spec.name}` is {_describe(wire)}, not one of {list(plan.accepted_values)}",
            )
        values[spec.name] = value
    extra = {} if payload.keys() <= values.keys() else {k: v for k, v in payload.items() if k not in values}
    return Change(operation, values, extra, parsed.envelope)


def _may_be_absent(contract: Contract, spec: FieldSpec, operation: str) -> None:
    """A field the payload lacks is null, unless the change cannot be placed or applied without it."""
    if spec.name in contract.key:
        raise _Reject("missing_key", f"key field `{spec.name}` is missing; every change must carry its key")
    # A Debezium delete carries the key only, unless the source table logs whole old rows.
    fix = (
        "; a Debezium delete carries only the key: order by the source position (e.g. `sequence: source.lsn`, "
        "`event_time: source.ts_ms`) or set REPLICA IDENTITY FULL on the PostgreSQL table"
        if operation == "delete" and contract.source.format == "debezium"
        else ""
    )
    if spec.name in contract.sequence:
        raise _Reject("missing_sequence", f"sequence field `{spec.name}` is missing; it orders the changes{fix}")
    if spec.name == contract.event_time:
        raise _Reject("missing_event_time", f"event time field `{spec.name}` is missing{fix}")
    if not spec.nullable and operation != "delete":
        raise _Reject("missing_field", f"non-nullable field `{spec.name}` is missing in a {operation}")


def _readable_event_time(contract: Contract, parsed: _Parsed) -> datetime | None:
    if contract.event_time in ENVELOPE_FIELDS:
        envelope_time: datetime | None = parsed.envelope.get(contract.event_time_column)
        return envelope_time
    wire = parsed.row.get(contract.event_time)
    if wire is None:
        return None
    try:
        moment: datetime = _parse_timestamp(logical_value(wire, parsed.column_types.get(contract.event_time)))
    except (ValueError, TypeError, OverflowError):
        return None
    return moment


def _filed(moment: datetime | None, record: LandingRecord, hours: HourRange | None) -> tuple[datetime, bool]:
    """The hour a record is filed under, and whether that is the hour of its own time.

    Its own time is `moment` (its event time, or a snapshot's download time) or else its Kafka time.
    When that hour is not one of `hours`, the record is filed under the hour of its Kafka time, or
    under the nearest partition when that is outside them too, so it is found in a partition that exists.
    """
    hour = hour_floor(moment if moment is not None else kafka_time(record))
    if hours is None or hour in hours:
        return hour, True
    return hours.nearest(hour_floor(kafka_time(record))), False


def _own_time(contract: Contract, record: LandingRecord, decoded: Decoded) -> datetime | None:
    if is_snapshot(record):
        return kafka_time(record)
    if isinstance(decoded, Change):
        return decoded.time(contract)
    return decoded.event_time if isinstance(decoded, Rejected) else None


def event_hour(contract: Contract, record: LandingRecord, decoded: Decoded, hours: HourRange | None = None) -> datetime:
    """The hour a record belongs to: its event time when it carries a readable one (even when it is
    rejected for another reason), else its Kafka time; kept within `hours` (see `_filed`).

    A full snapshot row belongs to the hour its download started: what it holds is at least that
    fresh, and no fresher, whatever the row's own event time says.
    """
    return _filed(_own_time(contract, record, decoded), record, hours)[0]


def landing_hour(
    contract: Contract,
    record: LandingRecord,
    schema_lookup: SchemaLookup | None = None,
    hours: HourRange | None = None,
) -> datetime:
    """`event_hour(contract, record, decode(contract, record), hours)` without typing every field.

    Landing files each record under this hour at Kafka speed; `raw` later decodes the record in full
    and must find the same hour, so both read the payload through `_payload` and the event time
    through `_readable_event_time` (a property test holds them equal).
    """
    moment = None
    value = record.value
    if is_snapshot(record):
        moment = kafka_time(record)
    elif value is not None and len(value) <= contract.source.max_value_bytes:
        try:
            moment = _readable_event_time(contract, _payload(contract, record, schema_lookup))
        except (_Reject, _Skip):
            moment = None
    return _filed(moment, record, hours)[0]


# ISO 8601 date-times that Arrow's cast reads exactly as `datetime.fromisoformat` does (checked, with the
# calendar, by the cast itself); other strings Python may still read take the per-record path.
_ISO_DATE_TIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?"
_ISO_ZONE = r"(Z|[+-]\d{2}(:?\d{2})?)$"
_HOUR_TYPE = pa.timestamp("us", tz="UTC")
# Epoch milliseconds that Python's datetime can hold (years 1 to 9999); the rest are no event time.
_EPOCH_MS = (-62_135_596_800_000, 253_402_300_799_999)


def landing_hours(
    contract: Contract, batch: LandingBatch, schema_lookup: SchemaLookup | None, hours: HourRange
) -> pa.Array:
    """`landing_hour` of every record of a batch, as one Arrow array: for a JSON contract the event
    times are read in native code (`platform_native`, or orjson where the contract names an operation
    field) and filed by Arrow compute, so no Python runs per record; records whose event time only
    Python can read (an unusual ISO form, a payload the scan leaves to orjson), and every record of
    other formats, take `landing_hour` one by one.

    Any event time outside `hours` files a record exactly as one without an event time (under the
    nearest hour to its Kafka time), so the fast path only needs to be exact within `hours`.
    """
    if contract.source.format != "json" or contract.event_time in ENVELOPE_FIELDS:
        return columns.timestamps(
            [landing_hour(contract, record, schema_lookup, hours) for record in batch.records()], _HOUR_TYPE
        )
    moments, by_python = (
        _scanned_moments(contract, batch)
        if contract.source.operation_field is None
        else _parsed_moments(contract, batch, contract.source.operation_field)
    )
    first, last = (columns.timestamp_scalar(hour, _HOUR_TYPE) for hour in (hours.first, hours.last))
    event_hours = _utc_hours(moments)
    kafka_hours = _utc_hours(columns.int64s(batch.timestamps_ms, pa.timestamp("ms")))
    nearest = pc.if_else(
        pc.less(kafka_hours, first), first, pc.if_else(pc.greater(kafka_hours, last), last, kafka_hours)
    )
    in_range = pc.and_(pc.greater_equal(event_hours, first), pc.less_equal(event_hours, last))  # null: no time
    filed = pc.coalesce(pc.if_else(in_range, event_hours, nearest), nearest)
    if not pc.any(by_python).as_py():
        return filed
    one_by_one = [
        landing_hour(contract, batch.record(index), schema_lookup, hours)
        for index in pc.indices_nonzero(by_python).to_pylist()
    ]
    return pc.replace_with_mask(filed, by_python, columns.timestamps(one_by_one, _HOUR_TYPE))


def _scanned_moments(contract: Contract, batch: LandingBatch) -> tuple[pa.Array, pa.Array]:
    """The hour of each record's event time (null where it has none), and which records Python must
    read: `platform_native` reads each payload in one pass of C and leaves to orjson and
    `datetime.fromisoformat` whatever it cannot read exactly as they do (orjson's loads and a `get`
    per payload were a quarter of a landing run)."""
    kinds, hours = platform_native.event_hours(
        batch.values,
        contract.event_time.encode(),
        contract.source.max_value_bytes,
    )
    kind = pa.Array.from_buffers(pa.uint8(), batch.size, [None, pa.py_buffer(kinds)])
    read = _read_topics(contract, batch)
    moment_kind, fallback_kind = columns.int64s([platform_native.MOMENT, platform_native.FALLBACK], pa.uint8())
    moment_here, by_python = pc.equal(kind, moment_kind), pc.equal(kind, fallback_kind)
    if read is not None:
        moment_here, by_python = pc.and_(moment_here, read), pc.and_(by_python, read)
    hour_values = pa.Array.from_buffers(_HOUR_TYPE, batch.size, [None, pa.py_buffer(hours)])
    return pc.if_else(moment_here, hour_values, pa.nulls(batch.size, _HOUR_TYPE)), by_python


def _read_topics(contract: Contract, batch: LandingBatch) -> pa.Array | None:
    """Which records come from a topic whose event times are read (None: all of them). Snapshot rows
    are filed by their Kafka time, and with topics named per operation, records of other topics are
    rejected by `_payload`."""
    topics = set(batch.topics)
    not_read = {topic for topic in topics if topic.startswith(SNAPSHOT_TOPIC_PREFIX)}
    if contract.source.topics_by_operation:
        not_read.update(topics - set(contract.source.topics_by_operation.values()))
    if not not_read:
        return None
    return columns.repeated(
        batch.topics, lambda distinct: columns.int64s([topic not in not_read for topic in distinct]).cast(pa.bool_())
    )


def _parsed_moments(contract: Contract, batch: LandingBatch, operation_field: str) -> tuple[pa.Array, pa.Array]:
    """`_scanned_moments` for a contract that names an operation field, whose value decides whether a
    record is read at all: each payload read by orjson, the event times parsed by Arrow compute."""
    texts, epoch_ms = _split_wires(_event_time_wires(contract, batch, operation_field))
    text_array = columns.strings(texts)
    no_text = pa.nulls(len(text_array), pa.string())
    naive = pc.match_substring_regex(text_array, _ISO_DATE_TIME + "$")  # null where no text
    zoned = pc.match_substring_regex(text_array, _ISO_DATE_TIME + _ISO_ZONE)
    from_numbers = columns.optional_int64s(epoch_ms).cast(pa.timestamp("ms", tz="UTC")).cast(_HOUR_TYPE)
    try:
        moments = pc.coalesce(
            pc.if_else(naive, text_array, no_text).cast(pa.timestamp("us")).cast(_HOUR_TYPE),
            pc.if_else(zoned, text_array, no_text).cast(_HOUR_TYPE),
            from_numbers,
        )
        by_python = pc.and_not_kleene(pc.is_valid(text_array), pc.or_kleene(naive, zoned))
    except pa.ArrowInvalid:  # a date the calendar does not have, e.g. 2026-02-30: Python explains
        moments, by_python = from_numbers, pc.is_valid(text_array)
    return moments, by_python


def _utc_hours(moments: pa.Array) -> pa.Array:
    """UTC moments floored to the hour, as `_HOUR_TYPE`. Floored without their zone: Arrow floors a zoned
    timestamp through its time zone database, ten times slower (2.3 ms for a 50k-record batch) and the
    same result for UTC."""
    unit = moments.type.unit
    return pc.floor_temporal(moments.cast(pa.timestamp(unit)), unit="hour").cast(_HOUR_TYPE)


_NOT_READ = object()  # an event time that is missing, unreadable, or of a record `_payload` rejects


def _event_time_wires(contract: Contract, batch: LandingBatch, operation_field: str) -> list[Any]:
    """The event time each record's JSON payload carries, or `_NOT_READ` where `_payload` would reject
    the record (no value, too large, not a JSON object, an unknown topic or operation) or it is a snapshot
    row (filed by its Kafka time), for a contract that names an operation field. Each payload is dropped
    as soon as it is read: keeping a batch of them alive made the garbage collector walk them over and
    over."""
    source, name = contract.source, contract.event_time
    if operation_field == name:
        return [_NOT_READ] * batch.size  # `_operation_from_field` takes it out of the payload first
    values = batch.values
    try:  # the usual batch: every value a JSON object of an acceptable size
        if max(map(len, values), default=0) > source.max_value_bytes:  # type: ignore[arg-type]
            raise TypeError
        read: list[Any] = [
            (payload.get(name, _NOT_READ), payload.get(operation_field))
            for payload in map(orjson.loads, values)  # type: ignore[arg-type]
        ]
    except (TypeError, AttributeError, orjson.JSONDecodeError):
        objects = (_json_object_or_none(value, source.max_value_bytes) for value in values)
        read = [(_NOT_READ, None) if p is None else (p.get(name, _NOT_READ), p.get(operation_field)) for p in objects]
    read_topics = _read_topics(contract, batch)
    topic_read = [True] * batch.size if read_topics is None else read_topics.to_pylist()
    known = source.operation_values
    return [
        wire if is_read and operation is not None and str(operation) in known else _NOT_READ
        for is_read, (wire, operation) in zip(topic_read, read, strict=True)
    ]


def _json_object_or_none(value: bytes | None, max_bytes: int) -> dict[str, Any] | None:
    if value is None or len(value) > max_bytes:
        return None
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def _split_wires(wires: list[Any]) -> tuple[list[Any], list[int | None]]:
    """Event time wires as ISO strings and epoch milliseconds (None elsewhere); every other wire (a
    float, a boolean, an object) is no event time, as `_parse_timestamp` refuses it."""
    if set(map(type, wires)) <= {str}:
        return wires, [None] * len(wires)
    strings = [wire if type(wire) is str else None for wire in wires]
    epoch_ms = [wire if type(wire) is int and _EPOCH_MS[0] <= wire <= _EPOCH_MS[1] else None for wire in wires]
    return strings, epoch_ms


def _out_of_range(
    contract: Contract, record: LandingRecord, moment: datetime, hours: HourRange, filed: datetime
) -> Rejected:
    what = "snapshot time (`as_of`)" if is_snapshot(record) else f"event time `{contract.event_time}`"
    return Rejected(
        "event_time_out_of_range",
        f"{what} {moment.isoformat()} is outside the hourly partitions {hours.describe()}, so it is filed "
        f"under {filed:%Y-%m-%d %H:00}; fix the producer's clock or the value it sends and publish the change again",
        moment,
    )


# The columns every raw row has besides the stored fields and the envelope's (see `DecodedBatch`).
_PLATFORM_COLUMNS = ("_op", "_extra", *KAFKA_POSITION_COLUMNS, "_kafka_timestamp", "_event_hour")


@dataclass
class DecodedBatch:
    """Raw rows and quarantine rows of a set of landed records, plus what a person wants to see.

    Raw rows are kept as columns until one is asked for as a dict (`rows`): their stored fields as one
    list per field (`fields`), their envelope columns in a dict per row (`envelopes`), and their platform
    columns as one list per column (`platform`), which `table` turns into Arrow arrays directly. Writing
    the platform columns into a dict per row, and reading them back out of it to build the table, cost
    about 4 s of a 1M-event hour.
    """

    # The stored fields (PII protected): field name -> a value per raw row.
    fields: dict[str, list[Any]] = field(default_factory=dict)
    # Each raw row's envelope columns (e.g. `_source_lsn`); None when no row has any.
    envelopes: list[dict[str, Any]] | None = None
    # `_PLATFORM_COLUMNS` -> one value per raw row; `_kafka_timestamp` as the record's epoch milliseconds.
    platform: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in _PLATFORM_COLUMNS})
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # by kind: tombstone, heartbeat, ...
    erased: int = 0
    # Fields that arrived but the contract does not name (kept in `_extra`), with how many records had them.
    unknown_fields: Counter[str] = field(default_factory=Counter)

    @property
    def size(self) -> int:
        """How many raw rows the batch has."""
        return len(self.platform["_op"])

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """Each raw row as one dict: stored fields, envelope columns and platform columns."""
        moments = {time_ms: kafka_moment(time_ms) for time_ms in set(self.platform["_kafka_timestamp"])}
        platform = {
            **self.platform,
            "_kafka_timestamp": list(map(moments.__getitem__, self.platform["_kafka_timestamp"])),
        }
        envelopes: Iterable[dict[str, Any]] = self.envelopes or repeat({}, self.size)
        return [
            {**dict(zip(self.fields, values, strict=True)), **envelope, **dict(zip(platform, row, strict=True))}
            for values, envelope, row in zip(
                zip(*self.fields.values(), strict=True),
                envelopes,
                zip(*platform.values(), strict=True),
                strict=True,
            )
        ]

    def table(self, schema: pa.Schema) -> pa.Table:
        """The raw rows as a table of `schema` (`raw_schema` of the contract, or a subset of it)."""
        columns_of = self.platform
        arrays = {
            "_op": columns.repeated_strings(columns_of["_op"]),
            "_extra": columns.strings(columns_of["_extra"]),
            "_topic": columns.repeated_strings(columns_of["_topic"]),
            "_partition": columns.int64s(columns_of["_partition"]),
            "_offset": columns.int64s(columns_of["_offset"]),
            "_kafka_timestamp": columns.int64s(columns_of["_kafka_timestamp"], pa.timestamp("ms", tz="UTC")),
            # One datetime per event hour, shared by its rows: each converted once.
            "_event_hour": columns.repeated(
                columns_of["_event_hour"], partial(columns.timestamps, type=TIMESTAMP), key=id
            ),
        }
        given = {field.name: arrays[field.name].cast(field.type) for field in schema if field.name in arrays}
        values = self.fields
        if self.envelopes is not None:
            envelope_names = {field.name for field in schema} - self.fields.keys() - given.keys()
            values = {**values, **{name: list(map(dict.get, self.envelopes, repeat(name))) for name in envelope_names}}
        return columns_table(values, schema, self.size, given)


def named_subject(
    contract: Contract, record: LandingRecord, decoded: Decoded, name: str, schema_lookup: SchemaLookup | None = None
) -> str | None:
    """The value of a `subject` field as an erasure names it, also when the record was rejected for
    another reason, or is a Debezium delete whose row is not kept (its original bytes still name the
    person)."""
    value = decoded.values.get(name) if isinstance(decoded, Change) else None
    if value is None:
        if record.value is None or len(record.value) > contract.source.max_value_bytes:
            return None
        try:
            value = _payload(contract, record, schema_lookup).row.get(name)
        except (_Reject, _Skip):
            return None
    return None if value is None else str(value)


_PlainChange = tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]  # the fields of a `Change`
# The fields of a batch's changes (name -> a value per change) -> the stored fields, PII protected
# (see `pii.protect_columns`).
ProtectColumns = Callable[[dict[str, list[Any]]], dict[str, list[Any]]]


def decode_batch(
    contract: Contract,
    records: Iterable[LandingRecord],
    protect: ProtectColumns,
    schema_lookup: SchemaLookup | None = None,
    is_erased: Callable[[LandingRecord, Decoded], bool] | None = None,
    first_hour: datetime | None = None,
) -> DecodedBatch:
    """Decode records into raw rows (PII protected by `protect`, given the changes' values of the whole
    batch, which it may change in place) and quarantine rows, in Kafka order.

    Records of keys under an erasure request, or naming an erased subject (`is_erased`), are dropped
    (and counted), so a replay of the archive or of Kafka never brings an erased person back. With
    `first_hour` (the first partition), a change whose time lies outside the partitions that existed
    when it landed goes to quarantine as `event_time_out_of_range`, filed where landing filed it.
    """
    with collector_paused():  # a batch keeps several containers per record; its walks were a sixth of the decode
        return _decoded_batch(
            contract, sorted(records, key=KAFKA_POSITION), protect, schema_lookup, is_erased, first_hour
        )


def _decoded_batch(
    contract: Contract,
    ordered: list[LandingRecord],
    protect: ProtectColumns,
    schema_lookup: SchemaLookup | None,
    is_erased: Callable[[LandingRecord, Decoded], bool] | None,
    first_hour: datetime | None,
) -> DecodedBatch:
    batch = DecodedBatch()
    plain, fields = (
        _plain_json_changes(contract, ordered) if contract.source.format == "json" else ([None] * len(ordered), None)
    )
    # A batch holds many records of one Kafka millisecond, one event hour and one landing: each is
    # worked out once.
    kafka_times: dict[int, datetime] = {}
    hours_of: dict[float | datetime, datetime] = {}  # by the hour's number since the epoch, or the moment
    ranges: dict[datetime, HourRange] = {}
    time_column, event_time = contract.event_time_column, contract.event_time
    # The records that become raw rows, with their changes and event hours (made into rows together).
    kept: list[LandingRecord] = []
    changes: list[_PlainChange] = []
    kept_hours: list[datetime] = []
    for record, change in zip(ordered, plain, strict=True):
        decoded: Decoded | None = None
        if change is None or is_erased is not None:
            decoded = decode(contract, record, schema_lookup) if change is None else Change(*change)
            if is_erased is not None and is_erased(record, decoded):
                batch.erased += 1
                continue
            change = _fields_of(decoded) if isinstance(decoded, Change) else None
        if change is None or (decoded is not None and is_snapshot(record)):  # plain changes are no snapshots
            assert decoded is not None
            moment = _own_time(contract, record, decoded)
        else:  # `Change.time`
            envelope, values = change[3], change[1]
            moment = envelope[time_column] if time_column in envelope else values.get(event_time)
        landed_at = record.landed_at
        hours = None
        if first_hour and landed_at:
            hours = ranges.get(landed_at) or ranges.setdefault(landed_at, HourRange.landed(first_hour, landed_at))
        if moment is not None:
            # Moments are nearly all distinct: a UTC one is looked up by its hour's number (hashing an
            # aware datetime asks its offset; flooring each one was a tenth of a batch).
            of = moment.timestamp() // 3600 if moment.tzinfo is UTC else moment
            hour = hours_of.get(of) or hours_of.setdefault(of, hour_floor(moment))
            in_range = hours is None or hours.first <= hour <= hours.last  # `hour in hours`, without a call
            if not in_range:
                hour = _filed(moment, record, hours)[0]
        else:
            hour, in_range = _filed(moment, record, hours)
        if change is not None:
            if not in_range and moment is not None and hours is not None:
                decoded = _out_of_range(contract, record, moment, hours, hour)
            else:
                kept.append(record)
                changes.append(change)
                kept_hours.append(hour)
                continue
        if isinstance(decoded, Skipped):
            batch.skipped[decoded.kind] += 1
        elif isinstance(decoded, Rejected):
            moment_of_record = kafka_times.get(record.timestamp_ms) or kafka_times.setdefault(
                record.timestamp_ms, kafka_time(record)
            )
            batch.quarantined.append(
                {
                    **position_columns(record, hour, moment_of_record),
                    "key": record.key,
                    "value": record.value,
                    "error": decoded.error,
                    "reason": decoded.reason,
                }
            )
    if len(kept) != len(ordered):  # the batch's columns hold records that are no raw rows
        fields = None
    _raw_rows(contract, batch, kept, changes, kept_hours, protect, fields)
    return batch


def _fields_of(change: Change) -> _PlainChange:
    return change.operation, change.values, change.extra, change.envelope


def _raw_rows(
    contract: Contract,
    batch: DecodedBatch,
    records: list[LandingRecord],
    changes: list[_PlainChange],
    hours: list[datetime],
    protect: ProtectColumns,
    fields: dict[str, list[Any]] | None,
) -> None:
    """The raw rows of the changes (of `records`, filed under `hours`) into `batch`, as columns made in
    loops in C: their stored fields as `protect` returns them (from `fields`, the changes' values by
    field when the caller has them already), their envelopes, and the platform columns."""
    if fields is None:  # every field, as the usual batch gives them: what to store is `protect`'s to say
        values = list(map(itemgetter(1), changes))
        fields = {spec.name: list(map(dict.get, values, repeat(spec.name))) for spec in contract.fields}
    batch.fields = protect(fields)
    extras = list(map(itemgetter(2), changes))
    extra_texts: list[str | None] = [None] * len(changes)
    if any(extras):
        for extra in filter(None, extras):
            batch.unknown_fields.update(extra.keys())
        extra_texts = [json.dumps(extra, sort_keys=True, default=str) if extra else None for extra in extras]
    batch.platform = dict(
        zip(
            _PLATFORM_COLUMNS,
            (
                list(map(itemgetter(0), changes)),
                extra_texts,
                *(list(map(itemgetter(index), records)) for index in range(len(KAFKA_POSITION_COLUMNS))),
                list(map(itemgetter(3), records)),  # the Kafka timestamp in milliseconds
                hours,
            ),
            strict=True,
        )
    )
    envelopes = list(map(itemgetter(3), changes))
    batch.envelopes = envelopes if any(envelopes) else None


def _plain_json_changes(
    contract: Contract, records: list[LandingRecord]
) -> tuple[list[_PlainChange | None], dict[str, list[Any]] | None]:
    """`decode` of each record of a JSON contract that decodes without a fault, field by field over the
    whole batch (each distinct wire value converted once); None for every other record (snapshot rows,
    rejects, values only the per-record rules read), which `decode` then takes one by one. With them,
    when every record is such a change of no other fields (the usual batch), the values by field.

    Most of the per-record decode went to Python calls around each field of each record, while a batch
    of changes holds few distinct timestamps, currencies or segments.
    """
    payloads = _json_objects(contract, records)
    operations = _operations(contract, records, payloads)
    readable = [operation is not None for operation in operations]
    names = [plan.spec.name for plan in _field_plans(contract)]
    objects = [payload for payload in payloads if payload is not None]
    every_field_given = True  # no null nor absent value in any field: then each payload holds every name
    by_field: dict[str, list[Any]] = {}
    for plan, name in zip(_field_plans(contract), names, strict=True):
        wires = (
            list(map(dict.get, payloads, repeat(name)))
            if len(objects) == len(payloads)
            else [None if p is None else p.get(name) for p in payloads]
        )
        every_field_given = every_field_given and None not in wires
        values = by_field[name] = _converted(contract, plan, wires, operations, readable)
        # Each payload becomes its change's values: converted values written back (what an unreadable
        # payload holds does not matter: `decode` reads its record again).
        if values is not wires and len(objects) == len(payloads):
            deque(map(setitem, payloads, repeat(name), values), maxlen=0)  # a loop in C
        elif values is not wires:
            for payload, value in zip(payloads, values, strict=True):
                if payload is not None:
                    payload[name] = value
    known = set(names)
    # The usual batch, checked in C: each payload holds exactly the known names (when every field had a
    # value in every payload, a payload with as many names as that has no other).
    if all(readable) and (
        set(map(len, payloads)) == {len(known)}
        if every_field_given
        else all(map(eq, map(dict.keys, payloads), repeat(known)))
    ):
        return list(zip(operations, payloads, repeat(_NO_FIELDS), repeat(_NO_FIELDS))), by_field  # type: ignore[arg-type]
    changes: list[_PlainChange | None] = [
        (
            operation,  # type: ignore[misc]  # known where `ok`
            payload,
            _NO_FIELDS,
            _NO_FIELDS,
        )
        if ok and payload.keys() == known
        else (
            operation,
            {name: payload.get(name) for name in names},  # absent fields null
            {k: v for k, v in payload.items() if k not in known},
            _NO_FIELDS,
        )
        if ok
        else None
        for payload, operation, ok in zip(payloads, operations, readable, strict=True)
    ]
    return changes, None


# The extra fields and envelope of a plain JSON change that has none: one dict shared by every such
# change (two empty dicts per record were a tenth of a batch's decode), never written to.
_NO_FIELDS: dict[str, Any] = {}


def _json_objects(contract: Contract, records: list[LandingRecord]) -> list[Any]:
    """Each record's payload as `_payload` reads it, or None where it rejects the record or the record
    is a snapshot row."""
    source = contract.source
    values = [record.value for record in records]
    try:  # the usual batch: every value a JSON object of an acceptable size
        if max(map(len, values), default=0) > source.max_value_bytes:  # type: ignore[arg-type]
            raise TypeError
        payloads: list[Any] = list(map(orjson.loads, values))  # type: ignore[arg-type]
        if set(map(type, payloads)) - {dict}:
            raise TypeError
    except (TypeError, orjson.JSONDecodeError):
        payloads = [_json_object_or_none(value, source.max_value_bytes) for value in values]
    # A value with a long number (rare) is read as `_payload` reads it. The batch is looked at whole
    # first (values apart by a byte that is no digit): value by value it took 1 s of 714k records.
    if contract.decimal_names and _LONG_NUMBER in b"\0".join(filter(None, values)).translate(_DIGITS_AND_POINTS):
        for index, (value, payload) in enumerate(zip(values, payloads, strict=True)):
            if payload is not None and value is not None and _has_long_number(value):
                payloads[index] = _with_exact_decimals(contract, value, payload)
    if any(map(is_snapshot_topic, {record.topic for record in records})):
        payloads = [None if is_snapshot(record) else payload for record, payload in zip(records, payloads, strict=True)]
    return payloads


def _operations(contract: Contract, records: list[LandingRecord], payloads: list[Any]) -> list[str | None]:
    """Each payload's operation as `_payload` finds it (taking the operation field out of the payload),
    or None where it rejects the record."""
    source = contract.source
    if source.topics_by_operation:
        by_topic = {topic: operation for operation, topic in reversed(source.topics_by_operation.items())}
        return [None if p is None else by_topic.get(r.topic) for r, p in zip(records, payloads, strict=True)]
    if source.operation_field is None:
        return [None if p is None else "create" for p in payloads]
    field_name, named = source.operation_field, source.operation_values
    wires = [None if p is None else p.pop(field_name, None) for p in payloads]
    return [None if wire is None else named.get(str(wire)) for wire in wires]


def _converted(
    contract: Contract, plan: _FieldPlan, wires: list[Any], operations: list[str | None], readable: list[bool]
) -> list[Any]:
    """One field's values over a batch, as `_typed_change` makes them; `readable` is cleared for every
    record whose wire value `_typed_change` would refuse (or that only it can read)."""
    kinds = set(map(type, wires))
    if kinds <= {plan.taken_as, type(None)} and not (plan.bounds and _out_of_bounds(wires, plan.bounds)):
        values = wires
    else:
        values = _converted_values(plan, wires, readable)
    if type(None) in kinds:
        absent_allowed: dict[str | None, bool] = {}
        for index in [index for index, wire in enumerate(wires) if wire is None]:
            operation = operations[index]
            if operation not in absent_allowed:
                absent_allowed[operation] = _absence_allowed(contract, plan.spec, operation)
            readable[index] = readable[index] and absent_allowed[operation]
    accepted = plan.accepted_values
    if accepted is not None:
        try:
            all_accepted = set(values) - {None} <= set(accepted)
        except TypeError:
            all_accepted = False
        if not all_accepted:
            for index, (wire, value) in enumerate(zip(wires, values, strict=True)):
                if wire is not None and value not in accepted:
                    readable[index] = False
    return values


def _converted_values(plan: _FieldPlan, wires: list[Any], readable: list[bool]) -> list[Any]:
    """Each distinct wire value converted once, told apart by type too (1 and True are equal keys)
    unless every wire has one type: then equal values are the same value and key their conversions
    themselves, looked up in a loop in C. A record whose value is refused is no longer `readable`;
    an array or an object (which cannot key anything) is refused with every value of the batch, so
    `_typed_change` reads those records one by one."""
    kinds = set(map(type, wires))
    if kinds <= {str, type(None)}:  # ISO timestamps, dates, decimals as text
        by_text = _texts_converted(plan, set(wires) - {None})
        values = list(map(by_text.get, wires))
        refused = _REFUSED in by_text.values()
    else:
        one_type = len(kinds) == 1  # not None alone: that is text's case above
        keys = wires if one_type else list(zip(map(type, wires), wires, strict=True))
        try:
            converted = {key: _convert_or_refuse(plan, key if one_type else key[1]) for key in set(keys)}
            converted[(type(None), None)] = None  # a key of two types only: a value of one is never a tuple
            values = list(map(converted.__getitem__, keys))
            refused = _REFUSED in converted.values()
        except TypeError:  # an array or an object among them
            values = [None if wire is None else _REFUSED for wire in wires]
            refused = True
    if refused:
        for index, value in enumerate(values):
            if value is _REFUSED:
                readable[index] = False
    return values


def _texts_converted(plan: _FieldPlan, texts: set[str]) -> dict[str, Any]:
    """Each distinct text converted (or `_REFUSED`). Timestamps, nearly all distinct, are parsed by
    `datetime.fromisoformat` mapped over them (a loop in C; three Python calls per value took 1.3 s of
    the 700k event times of a 1M-event hour), unless one of them needs `_parse_timestamp`'s refusal."""
    if plan.convert is _parse_timestamp:
        try:
            parsed = dict(zip(texts, map(datetime.fromisoformat, texts), strict=True))
            if set(map(id, map(attrgetter("tzinfo"), parsed.values()))) <= {id(UTC)}:  # all written in UTC
                return parsed
            return {
                text: moment
                if moment.tzinfo is UTC
                else moment.astimezone(UTC)
                if moment.tzinfo
                else moment.replace(tzinfo=UTC)
                for text, moment in parsed.items()
            }
        except (ValueError, OverflowError):
            pass  # one by one below: the text that fails is refused, the others converted
    return {text: _convert_or_refuse(plan, text) for text in texts}


_REFUSED = object()


def _convert_or_refuse(plan: _FieldPlan, wire: Any) -> Any:
    try:
        return plan.convert(wire)
    except (ValueError, TypeError, OverflowError, InvalidOperation):
        return _REFUSED


def _out_of_bounds(wires: list[Any], bounds: tuple[int, int]) -> bool:
    present = [wire for wire in wires if wire is not None]
    return bool(present) and (min(present) < bounds[0] or max(present) > bounds[1])


def _absence_allowed(contract: Contract, spec: FieldSpec, operation: str | None) -> bool:
    try:
        _may_be_absent(contract, spec, operation or "")
    except _Reject:
        return False
    return True
