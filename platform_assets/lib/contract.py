"""Entity contracts: the YAML files in ``contracts/`` parsed into checked, immutable objects.

A contract is the public interface between a source team and the platform, so every mistake in one
must be reported with the file, the key and what to write instead, before any asset is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

FIELD_TYPES = ("string", "int", "long", "double", "boolean", "timestamp", "date", "decimal(precision, scale)")
FORMATS = ("json", "debezium", "avro")
PII_POLICIES = ("hash", "mask", "drop")
OPERATIONS = ("create", "update", "delete")
DEFAULT_OPERATION_VALUES = {"c": "create", "u": "update", "d": "delete"}
DEFAULT_MAX_VALUE_BYTES = 1_000_000
# Entity, field and key names are written unquoted into the SQL of Spark (Sail), DataFusion (delta-rs
# predicates) and DuckDB (dbt), so they are plain lower-case identifiers: `-`, spaces or SQL in a name
# would break a statement or change what it means. A leading `_` is kept for platform columns.
NAME_RULE = "^[a-z][a-z0-9_]*$"
_NAME = re.compile(NAME_RULE)
MAX_NAME_LENGTH = 63  # PostgreSQL (and a Hive metastore on it) cuts longer identifiers
# Words that Sail or DataFusion read as a literal or a function where a column name is written bare
# (found by experiment: `WHERE true = 'x'` and `WHERE current_date = 'x'` fail; `WHERE null = 'x'`
# silently matches nothing).
RESERVED_NAMES = frozenset(
    {
        "true",
        "false",
        "null",
        "exists",
        "interval",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "session_user",
        "user",
        "localtime",
        "localtimestamp",
    }
)
_ENV_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")
# The contracts shipped with the platform (the code location reads PLATFORM_CONTRACTS_DIR instead, if set).
SHIPPED_CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


class ContractError(ValueError):
    """A contract file that the platform cannot build assets from."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    nullable: bool = True
    pii: str | None = None
    description: str = ""
    accepted_values: tuple[Any, ...] | None = None
    # The entity whose key this field holds when it names a person (e.g. a transaction's customer):
    # erasing that person's key erases the rows that name them too.
    subject: str | None = None
    # Digits in all and after the point of a `decimal(precision, scale)` field (None for other types).
    precision: int | None = None
    scale: int | None = None


@dataclass(frozen=True)
class EnvelopeField:
    """Change metadata outside the row (Debezium's `source` block, the envelope's `ts_ms`, the Kafka
    position) that a contract can name as its sequence or event time, and the raw column that keeps it."""

    path: str
    column: str
    type: str
    doc: str


ENVELOPE_FIELDS = {
    spec.path: spec
    for spec in (
        EnvelopeField("source.lsn", "_source_lsn", "long", "PostgreSQL: log position of the change"),
        EnvelopeField("source.file", "_source_file_number", "long", "MySQL: binlog file, kept as its numeric suffix"),
        EnvelopeField("source.pos", "_source_pos", "long", "MySQL: binlog position of the row's event"),
        EnvelopeField("source.row", "_source_row", "long", "MySQL: row number within the binlog event"),
        EnvelopeField("source.commit_lsn", "_source_commit_lsn", "string", "SQL Server: commit LSN (fixed-width hex)"),
        EnvelopeField("source.change_lsn", "_source_change_lsn", "string", "SQL Server: change LSN (fixed-width hex)"),
        EnvelopeField("source.event_serial_no", "_source_event_serial_no", "long", "SQL Server: event serial number"),
        EnvelopeField("source.ts_ms", "_source_ts_ms", "timestamp", "when the change happened in the database"),
        EnvelopeField("source.ts_us", "_source_ts_us", "timestamp", "source.ts_ms with microseconds"),
        EnvelopeField("ts_ms", "_ts_ms", "timestamp", "when Debezium processed the change"),
        EnvelopeField("kafka.offset", "_offset", "long", "the record's Kafka offset (its partition keeps a key)"),
    )
}
# Envelope metadata that every record has, whatever its format (the others exist only in Debezium envelopes).
KAFKA_PATHS = ("kafka.offset",)
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
MAX_DECIMAL_PRECISION = 38  # Arrow decimal128


@dataclass(frozen=True)
class SourceSpec:
    format: str
    topics_by_operation: dict[str, str] = field(default_factory=dict)
    topic: str | None = None
    operation_field: str | None = None
    operation_values: dict[str, str] = field(default_factory=dict)
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES

    @property
    def topics(self) -> tuple[str, ...]:
        if self.topic is not None:
            return (self.topic,)
        return tuple(dict.fromkeys(self.topics_by_operation.values()))


@dataclass(frozen=True)
class QualitySpec:
    max_quarantine_rate: float = 0.05
    max_row_count_change: float | None = None
    freshness_hours: int | None = None
    expectations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Contract:
    name: str
    description: str
    owner: str
    source: SourceSpec
    key: tuple[str, ...]
    # Row fields or envelope paths (`ENVELOPE_FIELDS`), compared in this order; `event_time` is either too.
    sequence: tuple[str, ...]
    event_time: str
    fields: tuple[FieldSpec, ...]
    snapshot_url: str | None = None
    quality: QualitySpec = QualitySpec()
    # Days a delete's tombstone is kept after the delete's event time (None: for ever). An older change
    # arriving later than that can bring the key back; the price of tables that do not grow for ever.
    tombstone_retention_days: int | None = None
    path: str = ""

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    # Cached (the dataclass is frozen, so these never go stale): decoding reads them for every record.
    @cached_property
    def stored_fields(self) -> tuple[FieldSpec, ...]:
        """Fields that exist after landing: a `pii: drop` field never leaves the archive."""
        return tuple(spec for spec in self.fields if spec.pii != "drop")

    @cached_property
    def stored_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.stored_fields)

    @cached_property
    def protected_fields(self) -> tuple[FieldSpec, ...]:
        """Stored fields whose values are transformed on the way into `raw` (`hash` or `mask`)."""
        return tuple(spec for spec in self.stored_fields if spec.pii is not None)

    @cached_property
    def decimal_names(self) -> tuple[str, ...]:
        """Fields of a `decimal(precision, scale)` type, whose JSON numbers are read from their text."""
        return tuple(spec.name for spec in self.fields if spec.type == "decimal")

    @cached_property
    def identity_fields(self) -> frozenset[str]:
        """Row fields that say which change this is (key, sequence, event time), never checked against
        accepted values."""
        return frozenset({*self.key, *self.sequence, self.event_time} - ENVELOPE_FIELDS.keys())

    @cached_property
    def sequence_columns(self) -> tuple[str, ...]:
        """The raw columns that order the changes of a key, most significant first."""
        return tuple(_column(path) for path in self.sequence)

    @cached_property
    def event_time_column(self) -> str:
        return _column(self.event_time)

    @cached_property
    def orders_by_source_position(self) -> bool:
        """Ordered and timed by the Debezium envelope alone, so that a change without a row (a
        truncate) can be placed among the rows' changes."""
        paths = (*self.sequence, self.event_time)
        return all(path in ENVELOPE_FIELDS and path not in KAFKA_PATHS for path in paths)

    @cached_property
    def envelope_fields(self) -> tuple[EnvelopeField, ...]:
        """Envelope metadata the contract orders or times changes by, kept in raw columns of their own
        (the Kafka position is kept for every record anyway)."""
        paths = dict.fromkeys((*self.sequence, self.event_time))
        return tuple(ENVELOPE_FIELDS[p] for p in paths if p in ENVELOPE_FIELDS and p not in KAFKA_PATHS)


def _column(name: str) -> str:
    return ENVELOPE_FIELDS[name].column if name in ENVELOPE_FIELDS else name


def _expand_env(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise ContractError(f"environment variable {name} is referenced but not set")
        return default

    return _ENV_REFERENCE.sub(replace, value)


def _checked_name(name: Any, key: str, where: str) -> str:
    """`name` if every engine reads it as a plain name; else an error naming the file, the key and the rule."""
    text = str(name)
    suggestion = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "a_name"
    if text.startswith("_"):
        raise ContractError(f"{where}: `{key}` is `{text}`; a leading `_` is reserved for platform columns")
    if not _NAME.match(text):
        raise ContractError(
            f"{where}: `{key}` is `{text}`; names must be snake_case matching {NAME_RULE} (lower-case letters, "
            f"digits and `_`, starting with a letter) so every SQL engine reads them as plain names; rename it, "
            f"e.g. `{suggestion}`"
        )
    if len(text) > MAX_NAME_LENGTH:
        raise ContractError(
            f"{where}: `{key}` is {len(text)} characters long; names are at most {MAX_NAME_LENGTH}; rename it shorter"
        )
    if text in RESERVED_NAMES:
        raise ContractError(
            f"{where}: `{key}` is `{text}`, a reserved SQL word that engines read as a value or function rather "
            f"than a column ({', '.join(sorted(RESERVED_NAMES))}); rename it, e.g. `{text}_value`"
        )
    return text


SOURCE_KEYS = ("format", "topics", "topic", "operation_field", "operation_values", "max_value_bytes")
QUALITY_KEYS = ("max_quarantine_rate", "max_row_count_change", "freshness_hours", "expectations")
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")  # what Kafka accepts as a topic name


def _known_keys(mapping: dict[str, Any], allowed: tuple[str, ...], key: str, where: str) -> None:
    unknown = sorted(set(map(str, mapping)) - set(allowed))
    if unknown:
        raise ContractError(f"{where}: `{key}` has unknown keys {unknown}; the keys are {', '.join(allowed)}")


def _whole_number(value: Any, key: str, where: str, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ContractError(f"{where}: `{key}` is {value!r}; give a whole number of {unit} (at least 1)")
    return value


def _fraction(value: Any, key: str, where: str, hint: str, at_most_one: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (at_most_one and value > 1):
        raise ContractError(f"{where}: `{key}` is {value!r}; {hint}")
    return float(value)


def _topic_name(value: Any, key: str, where: str) -> str:
    topic = "" if value is None else str(value)
    if not _TOPIC.match(topic) or topic in (".", ".."):
        raise ContractError(
            f"{where}: `{key}` is {topic!r}; give the Kafka topic name (1 to 249 of letters, digits, `.`, `_`, `-`)"
        )
    if topic.startswith("_snapshot."):
        raise ContractError(
            f"{where}: `{key}` is `{topic}`; topics starting with `_snapshot.` are reserved for snapshot loads"
        )
    return topic


def _operation_values(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise ContractError(
            f"{where}: `source.operation_values` is {value!r}; map each wire value to an operation, "
            "e.g. {I: create, U: update, D: delete}"
        )
    wrong = sorted(str(v) for v in value.values() if v not in OPERATIONS)
    if wrong:
        raise ContractError(
            f"{where}: `source.operation_values` maps to {wrong}; the operations are {', '.join(OPERATIONS)}"
        )
    return {str(k): v for k, v in value.items()}


def _require(mapping: dict[str, Any], key: str, where: str, hint: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise ContractError(f"{where}: missing `{key}`; {hint}")
    return mapping[key]


def parse_field(name: str, raw: Any, where: str) -> FieldSpec:
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: field `{name}` must be a mapping like {{type: string}}")
    unknown = set(raw) - {"type", "nullable", "pii", "description", "accepted_values", "subject"}
    if unknown:
        raise ContractError(f"{where}: field `{name}` has unknown keys {sorted(unknown)}")
    field_type = str(raw.get("type", "string"))
    precision, scale = _decimal_digits(name, field_type, where)
    if precision is not None:
        field_type = "decimal"
    elif field_type not in FIELD_TYPES:
        raise ContractError(f"{where}: field `{name}` has type `{field_type}`; use one of {', '.join(FIELD_TYPES)}")
    pii = raw.get("pii")
    if pii is not None and pii not in PII_POLICIES:
        raise ContractError(f"{where}: field `{name}` has pii `{pii}`; use one of {', '.join(PII_POLICIES)}")
    if pii in ("hash", "mask") and field_type != "string":
        raise ContractError(f"{where}: field `{name}` is {field_type}; pii `{pii}` applies to string fields only")
    accepted = raw.get("accepted_values")
    subject = raw.get("subject")
    if subject is not None and pii in ("mask", "drop"):
        raise ContractError(
            f"{where}: field `{name}` names a subject of `{subject}` but has pii `{pii}`, so an erasure could not "
            "find its rows after landing; store it in clear or with `pii: hash`"
        )
    return FieldSpec(
        name=name,
        type=field_type,
        nullable=bool(raw.get("nullable", True)),
        pii=pii,
        description=str(raw.get("description", "")),
        accepted_values=tuple(accepted) if accepted is not None else None,
        subject=str(subject) if subject is not None else None,
        precision=precision,
        scale=scale,
    )


def _decimal_digits(name: str, field_type: str, where: str) -> tuple[int | None, int | None]:
    """Precision and scale of a `decimal(precision, scale)` type, (None, None) for other types."""
    if not field_type.startswith("decimal"):
        return None, None
    match = _DECIMAL.match(field_type)
    precision, scale = (int(match.group(1)), int(match.group(2))) if match else (0, -1)
    if not 1 <= precision <= MAX_DECIMAL_PRECISION or not 0 <= scale <= precision:
        raise ContractError(
            f"{where}: field `{name}` has type `{field_type}`; write `decimal(precision, scale)` with "
            f"1 <= precision <= {MAX_DECIMAL_PRECISION} and 0 <= scale <= precision, e.g. `decimal(12, 2)`"
        )
    return precision, scale


def _parse_source(raw: Any, where: str) -> SourceSpec:
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: `source` must be a mapping with `format` and `topics` or `topic`")
    _known_keys(raw, SOURCE_KEYS, "source", where)
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise ContractError(f"{where}: source format `{fmt}` is not supported; use one of {', '.join(FORMATS)}")
    topics = raw.get("topics")
    topic = raw.get("topic")
    if (topics is None) == (topic is None):
        raise ContractError(
            f"{where}: source needs exactly one of `topics: {{create: .., update: .., delete: ..}}` or `topic: <name>`"
        )
    max_bytes = _whole_number(
        raw.get("max_value_bytes", DEFAULT_MAX_VALUE_BYTES), "source.max_value_bytes", where, "bytes"
    )
    if topics is not None:
        if fmt != "json":
            raise ContractError(f"{where}: one topic per operation is only defined for format json")
        if not isinstance(topics, dict) or not set(topics) <= set(OPERATIONS) or not topics:
            raise ContractError(f"{where}: `topics` maps operations ({', '.join(OPERATIONS)}) to topic names")
        by_operation = {op: _topic_name(name, f"source.topics.{op}", where) for op, name in topics.items()}
        if len(set(by_operation.values())) < len(by_operation):
            raise ContractError(
                f"{where}: `source.topics` names one topic for several operations; for one topic carrying "
                "several operations write `topic: <name>` and `operation_field: <field>`"
            )
        return SourceSpec(format=fmt, topics_by_operation=by_operation, max_value_bytes=max_bytes)
    operation_values = raw.get("operation_values", DEFAULT_OPERATION_VALUES if raw.get("operation_field") else None)
    return SourceSpec(
        format=fmt,
        topic=_topic_name(topic, "source.topic", where),
        operation_field=raw.get("operation_field"),
        operation_values={} if operation_values is None else _operation_values(operation_values, where),
        max_value_bytes=max_bytes,
    )


def _parse_quality(raw: Any, where: str) -> QualitySpec:
    if raw is None:
        return QualitySpec()
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: `quality` must be a mapping")
    _known_keys(raw, QUALITY_KEYS, "quality", where)
    change, freshness, expectations = (raw.get(k) for k in ("max_row_count_change", "freshness_hours", "expectations"))
    if expectations is not None and (
        not isinstance(expectations, list) or not all(isinstance(e, dict) for e in expectations)
    ):
        raise ContractError(
            f"{where}: `quality.expectations` is {expectations!r}; give a list of expectations, each a mapping "
            "like {expectation: expect_column_values_to_be_between, column: amount, min_value: 0}"
        )
    return QualitySpec(
        max_quarantine_rate=_fraction(
            raw.get("max_quarantine_rate", QualitySpec.max_quarantine_rate),
            "quality.max_quarantine_rate",
            where,
            "give the share of a partition's records allowed in quarantine, between 0 and 1 (e.g. 0.05)",
        ),
        max_row_count_change=None
        if change is None
        else _fraction(
            change,
            "quality.max_row_count_change",
            where,
            "give the allowed change against the previous partition as a fraction, e.g. 0.5 for 50%",
            at_most_one=False,
        ),
        freshness_hours=None
        if freshness is None
        else _whole_number(freshness, "quality.freshness_hours", where, "hours"),
        expectations=tuple(expectations or ()),
    )


def parse_contract(document: dict[str, Any], path: str = "<contract>") -> Contract:
    where = path
    if not isinstance(document, dict):
        raise ContractError(
            f"{where}: a contract is a YAML mapping with name, source, key, sequence, event_time, fields"
        )
    name = _checked_name(
        _require(document, "name", where, "give the entity a snake_case name, e.g. `name: customers`"), "name", where
    )
    raw_fields = _require(document, "fields", where, "declare every field with its type")
    if not isinstance(raw_fields, dict):
        raise ContractError(f"{where}: `fields` must map field names to {{type: ...}}")
    fields = tuple(parse_field(_checked_name(n, f"fields.{n}", where), spec, where) for n, spec in raw_fields.items())
    names = {spec.name for spec in fields}
    key = document.get("key")
    key = (key,) if isinstance(key, str) else tuple(key or ())
    if not key:
        raise ContractError(f"{where}: missing `key`; list the field(s) that identify an entity, e.g. `key: [id]`")
    for used in key:
        _checked_name(used, "key", where)
        if used not in names:
            raise ContractError(f"{where}: key field `{used}` is not declared under `fields`")
        if next(s for s in fields if s.name == used).pii == "drop":
            raise ContractError(f"{where}: key field `{used}` cannot be dropped as PII")
    source = _parse_source(_require(document, "source", where, "say where the events come from"), where)
    sequence, event_time = _parse_order(document, fields, source.format, where)
    retention = document.get("tombstone_retention_days")
    if retention is not None and (isinstance(retention, bool) or not isinstance(retention, int) or retention < 1):
        raise ContractError(
            f"{where}: `tombstone_retention_days` is {retention!r}; give a whole number of days (at least 1), "
            "or leave it out to keep tombstones for ever"
        )
    snapshot = document.get("snapshot")
    snapshot_url = _expand_env(str(snapshot["url"])) if isinstance(snapshot, dict) and snapshot.get("url") else None
    if snapshot_url is not None and set(sequence) & ENVELOPE_FIELDS.keys():
        raise ContractError(
            f"{where}: `snapshot` rows carry no envelope, so they cannot be ordered by `sequence: {list(sequence)}`; "
            "remove `snapshot` (a Debezium connector re-snapshots through the topic, as `op: r` records) or "
            "order by a row field"
        )
    return Contract(
        name=str(name),
        description=str(document.get("description", "")),
        owner=str(document.get("owner", "")),
        source=source,
        key=tuple(str(k) for k in key),
        sequence=sequence,
        event_time=event_time,
        fields=fields,
        snapshot_url=snapshot_url,
        tombstone_retention_days=retention,
        quality=_parse_quality(document.get("quality"), where),
        path=path,
    )


def _parse_order(
    document: dict[str, Any], fields: tuple[FieldSpec, ...], source_format: str, where: str
) -> tuple[tuple[str, ...], str]:
    """`sequence` (one name or a list, compared in order) and `event_time`: row fields, or envelope
    metadata (`source.lsn`, `ts_ms`, `kafka.offset`, ...) that Debezium sends with every change."""
    by_name = {spec.name: spec for spec in fields}
    raw_sequence = _require(
        document,
        "sequence",
        where,
        "name the field that increases with every change, or the source position, e.g. `sequence: source.lsn`",
    )
    sequence = (raw_sequence,) if isinstance(raw_sequence, str) else tuple(raw_sequence or ())
    if not sequence or not all(isinstance(name, str) for name in sequence):
        raise ContractError(
            f"{where}: `sequence` is {raw_sequence!r}; give a field name or a list of names, "
            "e.g. `sequence: [source.file, source.pos, source.row]`"
        )
    event_time = str(_require(document, "event_time", where, "name the timestamp that decides the hour"))
    for role, name, types in (
        *(("sequence", name, ("int", "long", "timestamp", "string")) for name in sequence),
        ("event_time", event_time, ("timestamp",)),
    ):
        envelope = ENVELOPE_FIELDS.get(name)
        if envelope is not None:
            if source_format != "debezium" and name not in KAFKA_PATHS:
                raise ContractError(
                    f"{where}: {role} `{name}` is Debezium envelope metadata, but the source format is "
                    f"`{source_format}`; use `format: debezium`, `kafka.offset` or a row field"
                )
            if envelope.type not in types:
                raise ContractError(
                    f"{where}: {role} `{name}` is a {envelope.type}; use one of "
                    f"{sorted(p for p, f in ENVELOPE_FIELDS.items() if f.type in types)} or a row field"
                )
            continue
        spec = by_name.get(name)
        if spec is None:
            looks_like_metadata = "." in name or name == "ts_ms"
            if not looks_like_metadata:
                _checked_name(name, role, where)
            hint = (
                f"declare it under `fields` or use envelope metadata: {', '.join(ENVELOPE_FIELDS)}"
                if looks_like_metadata
                else "declare it under `fields`"
            )
            raise ContractError(f"{where}: {role} field `{name}` is not declared under `fields`; {hint}")
        if spec.pii == "drop":
            raise ContractError(f"{where}: {role} field `{name}` cannot be dropped as PII")
        if role == "event_time" and spec.type != "timestamp":
            raise ContractError(f"{where}: event_time field `{name}` must have type timestamp")
        if role == "sequence" and spec.type not in ("int", "long", "timestamp"):
            raise ContractError(f"{where}: sequence field `{name}` must be int, long or timestamp")
    return sequence, event_time


@dataclass(frozen=True)
class RefusedContract:
    """A contract file that was not loaded, with the error that names its file, key and fix."""

    path: str
    error: str


def read_contracts(directory: Path = SHIPPED_CONTRACTS_DIR) -> tuple[list[Contract], list[RefusedContract]]:
    """Every contract that loads, and every file refused with its error.

    A file is refused alone: the other teams' entities still load. Of two contracts that define the same
    entity or read the same topic, the later file (in name order) is refused; a contract whose `subject`
    names an entity that no loaded contract defines is refused too.
    """
    if not directory.is_dir():
        raise ContractError(f"contracts directory {directory} does not exist; set PLATFORM_CONTRACTS_DIR")
    contracts: list[Contract] = []
    refused: list[RefusedContract] = []
    for path in sorted(directory.glob("*.y*ml")):
        try:
            contracts.append(_read_contract(path))
        except ContractError as error:
            refused.append(RefusedContract(str(path), str(error)))
    for problems in (_clashes, _unknown_subjects):
        while found := {contract.path: error for contract, error in problems(contracts)}:
            refused.extend(RefusedContract(path, error) for path, error in found.items())
            contracts = [contract for contract in contracts if contract.path not in found]
    return contracts, sorted(refused, key=lambda r: r.path)


def load_contracts(directory: Path = SHIPPED_CONTRACTS_DIR) -> list[Contract]:
    """Every contract, or a ContractError for the first refused file (for tools that need all of them)."""
    contracts, refused = read_contracts(directory)
    if refused:
        raise ContractError(refused[0].error)
    return contracts


def _read_contract(path: Path) -> Contract:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ContractError(f"{path}: is not valid YAML: {error}") from error
    return parse_contract(document, str(path))


def _clashes(contracts: list[Contract]) -> Iterator[tuple[Contract, str]]:
    """Contracts that define an entity, or read a topic, that an earlier file already does.

    Two contracts reading one topic would land, decode and count its records twice, each its own way.
    """
    entities: dict[str, str] = {}
    topics: dict[str, str] = {}
    for contract in contracts:
        if contract.name in entities:
            yield contract, f"{contract.path}: entity `{contract.name}` is already defined in {entities[contract.name]}"
            continue
        taken = next((topic for topic in contract.source.topics if topic in topics), None)
        if taken is not None:
            yield (
                contract,
                f"{contract.path}: `source` topic `{taken}` is already read by {topics[taken]}; a topic belongs to "
                "one entity contract: remove it here, or merge the two contracts",
            )
            continue
        entities[contract.name] = contract.path
        topics.update(dict.fromkeys(contract.source.topics, contract.path))


def _unknown_subjects(contracts: list[Contract]) -> Iterator[tuple[Contract, str]]:
    by_name = {contract.name: contract for contract in contracts}
    for contract in contracts:
        for spec in contract.fields:
            if spec.subject is None:
                continue
            subject = by_name.get(spec.subject)
            if subject is None:
                yield (
                    contract,
                    f"{contract.path}: field `{spec.name}` names subject `{spec.subject}`, which no contract defines "
                    f"(refused ones count as none); use one of {sorted(by_name)}, or fix `{spec.subject}`'s contract",
                )
                break
            if len(subject.key) != 1:
                yield (
                    contract,
                    f"{contract.path}: field `{spec.name}` names subject `{spec.subject}`, whose key has "
                    f"{len(subject.key)} fields; a subject field holds a one-field key",
                )
                break
