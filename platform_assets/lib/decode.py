"""Decoding of landed Kafka records into typed changes, as pure functions of the record bytes.

Everything that can go wrong with a record becomes a `Rejected` with a reason a person can act on;
nothing raises for bad data, so one poisoned record never blocks a partition and nothing is lost.
"""

from __future__ import annotations

import io
import json
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from platform_assets.lib.contract import Contract, FieldSpec
from platform_assets.lib.records import (
    Change,
    Decoded,
    HourRange,
    LandingRecord,
    Rejected,
    Skipped,
    hour_floor,
    is_snapshot,
    kafka_time,
    position_columns,
)

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
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError
    return float(value)


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
    return _Reject(
        "wrong_type",
        f"field `{spec.name}` must be {spec.type} but is {_describe(value)}; "
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


_DEBEZIUM_OPERATIONS = {"c": "create", "r": "create", "u": "update", "d": "delete"}


def _debezium(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    envelope = payload.get("payload", payload) if "schema" in payload else payload
    if not isinstance(envelope, dict) or "op" not in envelope:
        raise _Reject("invalid_envelope", "Debezium value has no `op`; expected the before/after/op envelope")
    operation = _DEBEZIUM_OPERATIONS.get(str(envelope["op"]))
    if operation is None:
        raise _Reject("unknown_operation", f"Debezium op {_describe(envelope['op'])} is not one of c, r, u, d")
    image = envelope.get("before") if operation == "delete" else envelope.get("after")
    if not isinstance(image, dict):
        side = "before" if operation == "delete" else "after"
        raise _Reject("invalid_envelope", f"Debezium op `{envelope['op']}` needs a `{side}` object")
    return operation, dict(image)


def _avro(value: bytes, schema_lookup: SchemaLookup | None) -> dict[str, Any]:
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
    return record


def _payload(contract: Contract, record: LandingRecord, schema_lookup: SchemaLookup | None) -> tuple[str, dict]:
    source = contract.source
    assert record.value is not None
    if is_snapshot(record):
        return "create", _json_object(record.value)
    if source.format == "json":
        payload = _json_object(record.value)
        if source.topics_by_operation:
            operation = next((op for op, topic in source.topics_by_operation.items() if topic == record.topic), None)
            if operation is None:
                raise _Reject(
                    "unknown_topic",
                    f"topic `{record.topic}` is not one of the contract's topics {sorted(source.topics)}",
                )
            return operation, payload
        return _operation_from_field(contract, payload), payload
    if source.format == "debezium":
        return _debezium(_json_object(record.value))
    payload = _avro(record.value, schema_lookup)
    return _operation_from_field(contract, payload), payload


def decode(contract: Contract, record: LandingRecord, schema_lookup: SchemaLookup | None = None) -> Decoded:
    """Decode one landed record; PII is not applied here (see `pii.protect`)."""
    if record.value is None:
        if contract.source.format == "debezium":
            return Skipped("Kafka tombstone after a Debezium delete")
        return Rejected("null_value", "record has no value; producers must send a JSON body for every change")
    if len(record.value) > contract.source.max_value_bytes:
        return Rejected(
            "oversized_value",
            f"value is {len(record.value)} bytes, above the contract's max_value_bytes "
            f"{contract.source.max_value_bytes}; raise the limit in the contract or split the record",
        )
    try:
        operation, payload = _payload(contract, record, schema_lookup)
    except _Reject as rejection:
        return Rejected(rejection.error, rejection.reason)
    try:
        return _typed_change(contract, operation, payload)
    except _Reject as rejection:
        return Rejected(rejection.error, rejection.reason, _readable_event_time(contract, payload))


def _typed_change(contract: Contract, operation: str, payload: dict[str, Any]) -> Change:
    values: dict[str, Any] = {}
    for spec in contract.fields:
        wire = payload.get(spec.name)
        if wire is None:
            _may_be_absent(contract, spec, operation)
            values[spec.name] = None
            continue
        try:  # this loop runs for every field of every record
            value = _CONVERTERS[spec.type](wire)
        except (ValueError, TypeError, OverflowError) as error:
            raise _wrong_type(spec, wire) from error
        if (
            spec.accepted_values is not None
            and value not in spec.accepted_values
            and spec.name not in contract.identity_fields
        ):
            raise _Reject(
                "unaccepted_value",
                f"field `{spec.name}` is {_describe(wire)}, not one of {list(spec.accepted_values)}",
            )
        values[spec.name] = value
    extra = {} if payload.keys() <= values.keys() else {k: v for k, v in payload.items() if k not in values}
    return Change(operation, values, extra)


def _may_be_absent(contract: Contract, spec: FieldSpec, operation: str) -> None:
    """A field the payload lacks is null, unless the change cannot be placed or applied without it."""
    if spec.name in contract.key:
        raise _Reject("missing_key", f"key field `{spec.name}` is missing; every change must carry its key")
    if spec.name == contract.sequence:
        raise _Reject("missing_sequence", f"sequence field `{spec.name}` is missing; it orders the changes")
    if spec.name == contract.event_time:
        raise _Reject("missing_event_time", f"event time field `{spec.name}` is missing")
    if not spec.nullable and operation != "delete":
        raise _Reject("missing_field", f"non-nullable field `{spec.name}` is missing in a {operation}")


def _readable_event_time(contract: Contract, payload: dict[str, Any]) -> datetime | None:
    wire = payload.get(contract.event_time)
    if wire is None:
        return None
    try:
        moment: datetime = _CONVERTERS[contract.field(contract.event_time).type](wire)
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
        moment: datetime = decoded.values[contract.event_time]
        return moment
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
            _, payload = _payload(contract, record, schema_lookup)
        except _Reject:
            payload = None
        if payload is not None:
            moment = _readable_event_time(contract, payload)
    return _filed(moment, record, hours)[0]


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


@dataclass
class DecodedBatch:
    """Raw rows and quarantine rows of a set of landed records, plus what a person wants to see."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    erased: int = 0
    # Fields that arrived but the contract does not name (kept in `_extra`), with how many records had them.
    unknown_fields: Counter[str] = field(default_factory=Counter)


def named_subject(
    contract: Contract, record: LandingRecord, decoded: Decoded, name: str, schema_lookup: SchemaLookup | None = None
) -> str | None:
    """The value of a `subject` field as an erasure names it, also when the record was rejected for
    another reason (its original bytes still name the person)."""
    if isinstance(decoded, Change):
        value = decoded.values.get(name)
    else:
        if record.value is None or len(record.value) > contract.source.max_value_bytes:
            return None
        try:
            _, payload = _payload(contract, record, schema_lookup)
        except _Reject:
            return None
        value = payload.get(name)
    return None if value is None else str(value)


def decode_batch(
    contract: Contract,
    records: Iterable[LandingRecord],
    protect: Callable[[dict[str, Any]], dict[str, Any]],
    schema_lookup: SchemaLookup | None = None,
    is_erased: Callable[[LandingRecord, Decoded], bool] = lambda record, decoded: False,
    first_hour: datetime | None = None,
) -> DecodedBatch:
    """Decode records into raw rows (PII protected) and quarantine rows, in Kafka order.

    Records of keys under an erasure request, or naming an erased subject, are dropped (and counted),
    so a replay of the archive or of Kafka never brings an erased person back. With `first_hour` (the
    first partition), a change whose time lies outside the partitions that existed when it landed goes
    to quarantine as `event_time_out_of_range`, filed where landing filed it.
    """
    batch = DecodedBatch()
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        decoded = decode(contract, record, schema_lookup)
        if is_erased(record, decoded):
            batch.erased += 1
            continue
        hours = HourRange.landed(first_hour, record.landed_at) if first_hour and record.landed_at else None
        moment = _own_time(contract, record, decoded)
        hour, in_range = _filed(moment, record, hours)
        if isinstance(decoded, Change) and not in_range and moment is not None and hours is not None:
            decoded = _out_of_range(contract, record, moment, hours, hour)
        position = position_columns(record, hour)
        if isinstance(decoded, Skipped):
            batch.skipped += 1
        elif isinstance(decoded, Rejected):
            batch.quarantined.append(
                {
                    **position,
                    "key": record.key,
                    "value": record.value,
                    "error": decoded.error,
                    "reason": decoded.reason,
                }
            )
        else:
            batch.unknown_fields.update(decoded.extra.keys())
            extra = json.dumps(decoded.extra, sort_keys=True, default=str) if decoded.extra else None
            batch.rows.append({"_op": decoded.operation, **protect(decoded.values), "_extra": extra, **position})
    return batch
