"""A contract inferred from one Debezium change event with its schemas (JsonConverter, schemas enabled).

The key schema gives the key, the row struct's schema the fields (types by their logical `name`),
`source.connector` the connector's own position and commit time. The result is a starting point that a
person reviews (owner, PII, descriptions): it always loads, since it is checked as any contract is.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

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


def infer_contract(
    topic: str, key: bytes | None, value: bytes | None, name: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The contract document for the Debezium topic that sent this key and value, and why any column
    was left out of it."""
    envelope = _json(value, "value")
    row_schema = next(
        (
            member
            for member in envelope["schema"].get("fields") or ()
            if member.get("field") == "after" and member.get("fields")
        ),
        None,
    )
    source = envelope["payload"].get("source") or {}
    if row_schema is None:
        raise InferenceError("the value is not a Debezium change event (no `after` struct in its schema)")
    key_payload = _json(key, "key")
    key_fields = [f["field"] for f in key_payload["schema"].get("fields") or ()]
    if not key_fields:
        raise InferenceError("the key has no fields: the table has no primary key; set `message.key.columns`")
    fields: dict[str, Any] = {}
    left_out = []
    for column in row_schema["fields"]:
        field_name = column["field"]
        if field_name.startswith("_"):
            left_out.append(f"column `{field_name}` starts with `_`, which contracts reserve for platform columns")
            continue
        try:
            fields[field_name] = _field(column, f"column `{field_name}`")
        except InferenceError as error:
            if field_name in key_fields:
                raise
            left_out.append(str(error))
    connector = str(source.get("connector", ""))
    entity = name or _NOT_SNAKE.sub("_", str(source.get("table") or topic.rsplit(".", 1)[-1]).lower()).strip("_")
    document = {
        "name": entity,
        "description": f"{source.get('db', '')}.{source.get('table', '')} captured by Debezium ({connector})",
        "owner": "",
        "source": {"format": "debezium", "topic": topic},
        "key": key_fields,
        "sequence": CONNECTOR_SEQUENCES.get(connector, "kafka.offset"),
        "event_time": "source.ts_ms",
        "fields": fields,
    }
    try:
        parse_contract(document, f"<inferred from {topic}>")
    except ContractError as error:
        raise InferenceError(f"the inferred contract does not load: {error}") from error
    return document, left_out
