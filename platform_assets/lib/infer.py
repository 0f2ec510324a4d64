"""A contract inferred from a Debezium topic's schemas: the schema that travels with a change event
(JsonConverter, schemas enabled) or the schemas registered for an Avro topic (AvroConverter, subjects
`<topic>-value` and `<topic>-key`).

The key schema gives the key, the row struct's schema the fields (types by their logical `name`), the
connector its own position and commit time. Avro columns are first read as the Kafka Connect column
schemas they were written from, so one mapping types the columns of both converters. The result is a
starting point that a person reviews (owner, PII, descriptions): it always loads, since it is checked as
any contract is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from platform_assets.lib.connect_types import avro_row_record
from platform_assets.lib.contract import ContractError, parse_contract

# The connector's natural change order: the position Debezium itself deduplicates by.
CONNECTOR_SEQUENCES: dict[str, str | list[str]] = {
    "postgresql": "source.lsn",
    "mysql": ["source.file", "source.pos", "source.row"],
    "mariadb": ["source.file", "source.pos", "source.row"],
    "sqlserver": ["source.commit_lsn", "source.change_lsn", "source.event_serial_no"],
}
PRIMITIVE_TYPES = {
    "int8": "int",
    "int16": "int",
    "int32": "int",
    "int64": "long",
    "float": "double",
    "float32": "double",
    "double": "double",
    "float64": "double",
    "boolean": "boolean",
    "string": "string",
}
LOGICAL_TYPES = {
    "io.debezium.time.Date": "date",
    "org.apache.kafka.connect.data.Date": "date",
    "io.debezium.time.Timestamp": "timestamp",
    "io.debezium.time.MicroTimestamp": "timestamp",
    "io.debezium.time.NanoTimestamp": "timestamp",
    "io.debezium.time.ZonedTimestamp": "timestamp",
    "org.apache.kafka.connect.data.Timestamp": "timestamp",
    # Times of day have no contract type: ISO strings.
    "io.debezium.time.Time": "string",
    "io.debezium.time.MicroTime": "string",
    "io.debezium.time.NanoTime": "string",
    "io.debezium.time.ZonedTime": "string",
    "org.apache.kafka.connect.data.Time": "string",
    # Unconstrained NUMERIC has no fixed scale: declare decimal(p, s) by hand to keep it exact.
    "io.debezium.data.VariableScaleDecimal": "double",
}
# Avro's types as the Kafka Connect types the AvroConverter writes them for (`connect.type` names the
# narrower ones, int8 and int16), and Avro's own logical types as the Connect logical types they stand for.
AVRO_CONNECT_TYPES = {
    "int": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "boolean": "boolean",
    "string": "string",
    "enum": "string",
    "bytes": "bytes",
}
AVRO_LOGICAL_TYPES = {
    "date": "org.apache.kafka.connect.data.Date",
    "timestamp-millis": "org.apache.kafka.connect.data.Timestamp",
    "timestamp-micros": "io.debezium.time.MicroTimestamp",
    "time-millis": "org.apache.kafka.connect.data.Time",
    "time-micros": "io.debezium.time.MicroTime",
    "decimal": "org.apache.kafka.connect.data.Decimal",
}
_NOT_SNAKE = re.compile(r"[^a-z0-9_]+")


class InferenceError(ValueError):
    """A record from which no contract can be inferred, with what to do instead."""


def _json(data: bytes | None, what: str) -> dict[str, Any]:
    try:
        document = orjson.loads(data) if data is not None else None
    except orjson.JSONDecodeError as error:
        raise InferenceError(f"the {what} is not JSON ({error}); infer reads the JsonConverter's output") from error
    if not isinstance(document, dict) or not isinstance(document.get("schema"), dict) or "payload" not in document:
        raise InferenceError(
            f"the {what} has no `schema`; set `{what}.converter.schemas.enable=true` on the connector "
            "(or write the contract by hand)"
        )
    return document


def is_change_event(value: bytes | None) -> bool:
    """A row change with its schema (not a tombstone, heartbeat, transaction boundary or message)."""
    try:
        document = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return False
    if not isinstance(document, dict) or not isinstance(document.get("schema"), dict):
        return False
    payload = document.get("payload")
    return isinstance(payload, dict) and payload.get("op") in ("c", "r", "u", "d")


def _field(column: dict[str, Any], where: str) -> dict[str, Any]:
    """A Connect column schema (`type`, `optional`, logical `name`, `parameters`) as a contract field."""
    name, parameters = column.get("name"), column.get("parameters") or {}
    if name == "org.apache.kafka.connect.data.Decimal":
        precision = int(parameters.get("connect.decimal.precision", 38))
        spec: dict[str, Any] = {"type": f"decimal({min(precision, 38)}, {int(parameters.get('scale', 0))})"}
    elif name in LOGICAL_TYPES:
        spec = {"type": LOGICAL_TYPES[name]}
    elif column.get("type") in PRIMITIVE_TYPES:
        spec = {"type": PRIMITIVE_TYPES[column["type"]]}
        if name == "io.debezium.data.Enum" and parameters.get("allowed"):
            spec["description"] = f"one of {parameters['allowed']}"
    else:
        raise InferenceError(
            f"{where} has schema type `{column.get('type')}`{f' ({name})' if name else ''}, which no contract "
            "type holds: it is left out of the contract and kept in `_extra`"
        )
    if not column.get("optional", True):
        spec["nullable"] = False
    return spec


def _avro_column(avro_field: dict[str, Any], named: dict[str, Any]) -> dict[str, Any]:
    """An Avro row field (as fastavro parses it) as the Connect column schema it was written from."""
    branches = avro_field["type"] if isinstance(avro_field["type"], list) else [avro_field["type"]]
    values = [named.get(b, {"type": b}) if isinstance(b, str) else b for b in branches if b != "null"]
    schema = values[0] if len(values) == 1 else {"type": "union"}
    name = schema.get("connect.name") or AVRO_LOGICAL_TYPES.get(schema.get("logicalType", ""))
    parameters = schema.get("connect.parameters") or (
        {"scale": str(schema.get("scale", 0)), "connect.decimal.precision": str(schema["precision"])}
        if schema.get("logicalType") == "decimal"
        else {}
    )
    return {
        "field": avro_field["name"],
        "type": schema.get("connect.type") or AVRO_CONNECT_TYPES.get(str(schema["type"]), str(schema["type"])),
        "optional": "null" in branches,
        "name": name,
        "parameters": parameters,
    }


@dataclass(frozen=True)
class RowSchema:
    """What a topic's schemas say about its rows: every column's name, each column a contract type holds
    as a contract field, the key, the Debezium connector that captured them (empty when the value is not
    a Debezium envelope), and why a column was left out."""

    columns: tuple[str, ...]
    fields: dict[str, dict[str, Any]]
    key: list[str]
    left_out: list[str]
    connector: str
    captured: str
    table: str


def _row_schema(columns: list[dict[str, Any]], key: list[str], connector: str, captured: str, table: str) -> RowSchema:
    fields: dict[str, Any] = {}
    left_out = []
    for column in columns:
        field_name = column["field"]
        if field_name.startswith("_"):
            left_out.append(f"column `{field_name}` starts with `_`, which contracts reserve for platform columns")
            continue
        try:
            fields[field_name] = _field(column, f"column `{field_name}`")
        except InferenceError as error:
            if field_name in key:
                raise
            left_out.append(str(error))
    return RowSchema(tuple(column["field"] for column in columns), fields, key, left_out, connector, captured, table)


def _json_row_schema(topic: str, key: bytes | None, value: bytes | None) -> RowSchema:
    """The rows of a JsonConverter change event (schemas enabled) and its record key."""
    envelope = _json(value, "value")
    row_schema = next(
        (
            member
            for member in envelope["schema"].get("fields") or ()
            if member.get("field") == "after" and member.get("fields")
        ),
        None,
    )
    if row_schema is None:
        raise InferenceError("the value is not a Debezium change event (no `after` struct in its schema)")
    source = envelope["payload"].get("source") or {}
    key_fields = [f["field"] for f in _json(key, "key")["schema"].get("fields") or ()]
    return _row_schema(
        row_schema["fields"],
        key_fields,
        str(source.get("connector", "")),
        f"{source.get('db', '')}.{source.get('table', '')}",
        str(source.get("table") or topic.rsplit(".", 1)[-1]),
    )


def _parsed_avro(schema: str, what: str) -> Any:
    import fastavro

    try:
        return fastavro.parse_schema(json.loads(schema))
    except (ValueError, fastavro.schema.SchemaParseException) as error:
        raise InferenceError(f"the registered {what} schema is not an Avro schema: {error}") from error


def avro_row_schema(value_schema: str, key_schema: str | None) -> RowSchema:
    """The rows of an Avro topic from its registered schemas: a Debezium envelope's row record (or the
    value record itself when it is no envelope), and the key record's fields (none without a key schema)."""
    envelope = _parsed_avro(value_schema, "value")
    if not isinstance(envelope, dict) or envelope.get("type") != "record":
        raise InferenceError("the registered value schema is not an Avro record")
    named = envelope.get("__named_schemas", {})
    row = avro_row_record(envelope)
    source = next((f["type"] for f in envelope["fields"] if f["name"] == "source"), None)
    source = named.get(source, source) if isinstance(source, str) else source
    source_name = str(source.get("connect.name", "")) if isinstance(source, dict) and row is not None else ""
    # io.debezium.connector.<connector>.Source
    connector = source_name.rsplit(".", 2)[-2] if source_name.startswith("io.debezium.connector.") else ""
    key_record = _parsed_avro(key_schema, "key") if key_schema is not None else None
    key = [f["name"] for f in key_record["fields"]] if isinstance(key_record, dict) and "fields" in key_record else []
    captured = str(envelope["name"]).rsplit(".", 1)[0] if row is not None else str(envelope["name"])
    return _row_schema(
        [_avro_column(f, named) for f in (row or envelope)["fields"]],
        key,
        connector,
        captured,
        captured.rsplit(".", 1)[-1],
    )


def infer_contract(
    topic: str, key: bytes | None, value: bytes | None, name: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The contract document for the Debezium topic that sent this key and value, and why any column
    was left out of it."""
    return _contract_document(topic, _json_row_schema(topic, key, value), name)


def infer_contract_from_registry(
    topic: str, value_schema: str, key_schema: str | None, name: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The contract document for the Avro Debezium topic whose value and key schemas are these, and why
    any column was left out of it."""
    return _contract_document(topic, avro_row_schema(value_schema, key_schema), name)


def _contract_document(topic: str, row: RowSchema, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    if not row.connector:
        raise InferenceError(
            "the value is not a Debezium change event (no `after` record and `source` block in its schema); "
            "write the contract by hand: its `sequence` and `event_time` are fields only you can name"
        )
    if not row.key:
        raise InferenceError("the key has no fields: the table has no primary key; set `message.key.columns`")
    entity = name or _NOT_SNAKE.sub("_", row.table.lower()).strip("_")
    document = {
        "name": entity,
        "description": f"{row.captured} captured by Debezium ({row.connector})",
        "owner": "",
        "source": {"format": "debezium", "topic": topic},
        "key": row.key,
        "sequence": CONNECTOR_SEQUENCES.get(row.connector, "kafka.offset"),
        "event_time": "source.ts_ms",
        "fields": row.fields,
    }
    try:
        parse_contract(document, f"<inferred from {topic}>")
    except ContractError as error:
        raise InferenceError(f"the inferred contract does not load: {error}") from error
    return document, row.left_out
