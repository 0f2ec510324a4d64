"""Kafka Connect and Debezium logical types, read by the schema that travels with a Debezium value.

The same wire value means different things by its column's schema `name` (JSON with schemas enabled)
or `connect.name` (Avro): an int64 is milliseconds, microseconds or nanoseconds since the epoch, a
base64 string is a decimal's unscaled digits. The contract's type alone cannot tell, so each column
is first turned into the Python value it stands for, then typed by the contract as any value is.
Times of day have no contract type: they become ISO strings (`13:51:30.123`) for `string` fields.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

# A column's logical type name and its parameters (e.g. a decimal's scale), by column name.
ColumnTypes = dict[str, tuple[str, dict[str, Any]]]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError
    return value


def _unscaled(value: Any) -> int:
    """A decimal's unscaled value: big-endian two's complement, base64 in JSON, bytes in Avro."""
    raw = base64.b64decode(value, validate=True) if isinstance(value, str) else value
    if not isinstance(raw, bytes):
        raise ValueError
    return int.from_bytes(raw, "big", signed=True)


def _decimal(value: Any, parameters: dict[str, Any]) -> Decimal:
    if isinstance(value, Decimal):  # fastavro already read Avro's decimal logical type
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):  # JsonConverter decimal.format=NUMERIC
        return Decimal(repr(value))
    return Decimal(f"{_unscaled(value)}E-{int(parameters.get('scale', 0))}")


def _variable_scale_decimal(value: Any, parameters: dict[str, Any]) -> Decimal:
    if not isinstance(value, dict):
        raise ValueError
    return _decimal(value["value"], {"scale": value["scale"]})


def _time_of_day(units_per_second: int) -> Callable[[Any, dict[str, Any]], str]:
    """Time past midnight as `HH:MM:SS[.ffffff]` (PostgreSQL's 24:00:00 included)."""

    def convert(value: Any, parameters: dict[str, Any]) -> str:
        if isinstance(value, time):  # fastavro already read Avro's time-millis
            return value.isoformat()
        seconds, fraction = divmod(_integer(value), units_per_second)
        if not 0 <= seconds <= 86_400:
            raise ValueError
        text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        micros = fraction * 1_000_000 // units_per_second
        return f"{text}.{micros:06d}".rstrip("0").rstrip(".") if micros else text

    return convert


def _since_epoch(units_per_second: int) -> Callable[[Any, dict[str, Any]], datetime]:
    """A timestamp without time zone: the wall-clock value read as UTC, as Debezium writes it."""

    def convert(value: Any, parameters: dict[str, Any]) -> datetime:
        if isinstance(value, datetime):  # fastavro already read Avro's timestamp-millis
            return value
        return EPOCH + timedelta(microseconds=_integer(value) * 1_000_000 // units_per_second)

    return convert


def _days(value: Any, parameters: dict[str, Any]) -> date:
    if isinstance(value, date):  # fastavro already read Avro's date
        return value
    return date(1970, 1, 1) + timedelta(days=_integer(value))


LOGICAL_TYPES: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "io.debezium.time.Date": _days,
    "org.apache.kafka.connect.data.Date": _days,
    "io.debezium.time.Time": _time_of_day(1000),
    "org.apache.kafka.connect.data.Time": _time_of_day(1000),
    "io.debezium.time.MicroTime": _time_of_day(1_000_000),
    "io.debezium.time.NanoTime": _time_of_day(1_000_000_000),
    "io.debezium.time.Timestamp": _since_epoch(1000),
    "org.apache.kafka.connect.data.Timestamp": _since_epoch(1000),
    "io.debezium.time.MicroTimestamp": _since_epoch(1_000_000),
    "io.debezium.time.NanoTimestamp": _since_epoch(1_000_000_000),
    "org.apache.kafka.connect.data.Decimal": _decimal,
    "io.debezium.data.VariableScaleDecimal": _variable_scale_decimal,
    # ZonedTimestamp, ZonedTime, Json, Uuid, Enum, EnumSet, Xml: strings, read as they are.
}


def logical_value(value: Any, column_type: tuple[str, dict[str, Any]] | None) -> Any:
    """The value a column stands for; raises ValueError (or OverflowError) when it cannot be read."""
    if value is None or column_type is None:
        return value
    convert = LOGICAL_TYPES.get(column_type[0])
    return value if convert is None else convert(value, column_type[1])


def json_column_types(envelope_schema: Any) -> ColumnTypes:
    """Column types from a JsonConverter envelope schema: the `after` (or `before`) struct's fields."""
    if not isinstance(envelope_schema, dict):
        return {}
    for member in envelope_schema.get("fields") or ():
        if isinstance(member, dict) and member.get("field") in ("after", "before"):
            return {
                column["field"]: (column["name"], column.get("parameters") or {})
                for column in member.get("fields") or ()
                if isinstance(column, dict) and "name" in column and "field" in column
            }
    return {}


def avro_column_types(envelope_schema: Any) -> ColumnTypes:
    """Column types from an Avro envelope schema (as fastavro parses it): the `connect.name` and
    `connect.parameters` of the row record's fields, optional columns being unions with null."""
    record = avro_row_record(envelope_schema)
    if record is None:
        return {}
    named = envelope_schema.get("__named_schemas", {})
    return {f["name"]: ct for f in record["fields"] if (ct := _avro_type(f["type"], named)) is not None}


def avro_row_record(envelope_schema: Any) -> dict[str, Any] | None:
    """The row record of an Avro Debezium envelope schema (as fastavro parses it): the type of its
    `after` (or `before`) field, which the other names by reference."""
    if not isinstance(envelope_schema, dict):
        return None
    named = envelope_schema.get("__named_schemas", {})
    for member in envelope_schema.get("fields") or ():
        if member.get("name") not in ("after", "before"):
            continue
        branches = member["type"] if isinstance(member["type"], list) else [member["type"]]
        for branch in branches:
            record = named.get(branch) if isinstance(branch, str) else branch
            if isinstance(record, dict) and record.get("type") == "record":
                return record
    return None


def _avro_type(schema: Any, named: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for branch in schema if isinstance(schema, list) else [schema]:
        branch = named.get(branch, branch) if isinstance(branch, str) else branch
        if isinstance(branch, dict) and "connect.name" in branch:
            return branch["connect.name"], branch.get("connect.parameters") or {}
    return None
