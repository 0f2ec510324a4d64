"""Debezium change events built field for field as the connectors send them with the JsonConverter
(`schemas.enable=true`): the envelope schema, `source` blocks and key messages of Debezium 2.7
(PostgreSQL), 2.4 (MySQL) and 1.6 (SQL Server) as captured in /work/research/debezium.md."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

COMMON_SOURCE = [
    {"type": "string", "optional": False, "field": "version"},
    {"type": "string", "optional": False, "field": "connector"},
    {"type": "string", "optional": False, "field": "name"},
    {"type": "int64", "optional": False, "field": "ts_ms"},
    {
        "type": "string",
        "optional": True,
        "name": "io.debezium.data.Enum",
        "version": 1,
        "parameters": {"allowed": "true,last,false,incremental"},
        "default": "false",
        "field": "snapshot",
    },
    {"type": "string", "optional": False, "field": "db"},
    {"type": "string", "optional": True, "field": "sequence"},
]
SOURCE_FIELDS = {
    "postgresql": [
        {"type": "int64", "optional": True, "field": "ts_us"},
        {"type": "int64", "optional": True, "field": "ts_ns"},
        {"type": "string", "optional": False, "field": "schema"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "int64", "optional": True, "field": "txId"},
        {"type": "int64", "optional": True, "field": "lsn"},
        {"type": "int64", "optional": True, "field": "xmin"},
    ],
    "mysql": [
        {"type": "string", "optional": True, "field": "table"},
        {"type": "int64", "optional": False, "field": "server_id"},
        {"type": "string", "optional": True, "field": "gtid"},
        {"type": "string", "optional": False, "field": "file"},
        {"type": "int64", "optional": False, "field": "pos"},
        {"type": "int32", "optional": False, "field": "row"},
        {"type": "int64", "optional": True, "field": "thread"},
        {"type": "string", "optional": True, "field": "query"},
    ],
    "sqlserver": [
        {"type": "string", "optional": False, "field": "schema"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "string", "optional": True, "field": "change_lsn"},
        {"type": "string", "optional": True, "field": "commit_lsn"},
        {"type": "int64", "optional": True, "field": "event_serial_no"},
    ],
}
TRANSACTION = {
    "type": "struct",
    "fields": [
        {"type": "string", "optional": False, "field": "id"},
        {"type": "int64", "optional": False, "field": "total_order"},
        {"type": "int64", "optional": False, "field": "data_collection_order"},
    ],
    "optional": True,
    "name": "event.block",
    "version": 1,
    "field": "transaction",
}


def column(field_name: str, type_: str, optional: bool = True, **schema: Any) -> dict[str, Any]:
    """One column of a `...Value` struct schema (`schema` adds `name`, `version`, `parameters`)."""
    return {"type": type_, "optional": optional, **schema, "field": field_name}


@dataclass
class Table:
    """One captured table: `connector` is postgresql, mysql or sqlserver; `columns` its Value schema."""

    connector: str
    columns: list[dict[str, Any]]
    key_columns: tuple[str, ...] = ("id",)
    prefix: str = "pg"
    db: str = "testdb"
    table: str = "persons"
    version: str = "2.7.1.Final"
    name_prefix: str = field(init=False)

    def __post_init__(self) -> None:
        middle = "public" if self.connector == "postgresql" else "dbo" if self.connector == "sqlserver" else self.db
        self.name_prefix = f"{self.prefix}.{middle}.{self.table}"

    def envelope_schema(self) -> dict[str, Any]:
        value = {"type": "struct", "fields": self.columns, "optional": True, "name": f"{self.name_prefix}.Value"}
        return {
            "type": "struct",
            "fields": [
                {**value, "field": "before"},
                {**value, "field": "after"},
                {
                    "type": "struct",
                    "fields": COMMON_SOURCE + SOURCE_FIELDS[self.connector],
                    "optional": False,
                    "name": f"io.debezium.connector.{self.connector}.Source",
                    "field": "source",
                },
                TRANSACTION,
                {"type": "string", "optional": False, "field": "op"},
                {"type": "int64", "optional": True, "field": "ts_ms"},
                {"type": "int64", "optional": True, "field": "ts_us"},
                {"type": "int64", "optional": True, "field": "ts_ns"},
            ],
            "optional": False,
            "name": f"{self.name_prefix}.Envelope",
            "version": 2,
        }

    def source(self, ts_ms: int, snapshot: str = "false", **position: Any) -> dict[str, Any]:
        """The `source` block: `position` holds the connector's fields (lsn/txId, file/pos/row, ...)."""
        common = {
            "version": self.version,
            "connector": self.connector,
            "name": self.prefix,
            "ts_ms": ts_ms,
            "snapshot": snapshot,
            "db": self.db,
            "sequence": None,
        }
        if self.connector == "postgresql":
            lsn = position["lsn"]
            return {
                **common,
                "sequence": json.dumps([position.get("last_commit_lsn"), str(lsn)]),
                "ts_us": ts_ms * 1000,
                "ts_ns": ts_ms * 1_000_000,
                "schema": "public",
                "table": self.table,
                "txId": position.get("txId", 490),
                "lsn": lsn,
                "xmin": None,
            }
        if self.connector == "mysql":
            return {
                **common,
                "table": self.table,
                "server_id": 0 if snapshot != "false" else 223344,
                "gtid": None,
                "file": position["file"],
                "pos": position["pos"],
                "row": position.get("row", 0),
                "thread": None if snapshot != "false" else 7,
                "query": None,
            }
        return {
            **common,
            "schema": "dbo",
            "table": self.table,
            "change_lsn": position.get("change_lsn"),
            "commit_lsn": position["commit_lsn"],
            "event_serial_no": position.get("event_serial_no"),
        }

    def change(
        self,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        ts_ms: int,
        snapshot: str = "false",
        **position: Any,
    ) -> bytes:
        """A change event's value as the JsonConverter writes it, schema included."""
        payload = self.payload(op, before, after, ts_ms, snapshot, **position)
        return json.dumps({"schema": self.envelope_schema(), "payload": payload}).encode()

    def payload(
        self,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        ts_ms: int,
        snapshot: str = "false",
        **position: Any,
    ) -> dict[str, Any]:
        """The envelope; its own `ts_ms` (processing time) is a little later than the source's."""
        return {
            "before": before,
            "after": after,
            "source": self.source(ts_ms, snapshot, **position),
            "transaction": None,
            "op": op,
            "ts_ms": ts_ms + 250,
            "ts_us": (ts_ms + 250) * 1000,
            "ts_ns": (ts_ms + 250) * 1_000_000,
        }

    def key(self, **values: Any) -> bytes:
        """The key message: a struct of the key columns, schemas enabled."""
        fields = [dict(c, optional=False) for c in self.columns if c["field"] in self.key_columns]
        schema = {"type": "struct", "fields": fields, "optional": False, "name": f"{self.name_prefix}.Key"}
        return json.dumps({"schema": schema, "payload": values}).encode()


def truncate(table: Table, ts_ms: int, **position: Any) -> bytes:
    """`op: t` (sent with a null Kafka key, only when `skipped.operations` does not skip it)."""
    return table.change("t", None, None, ts_ms, **position)


def logical_message(table: Table, ts_ms: int, lsn: int) -> bytes:
    """PostgreSQL `op: m` (pg_logical_emit_message): no before/after, a `message` block."""
    source = {**table.source(ts_ms, lsn=lsn), "schema": "", "table": ""}
    payload = {"op": "m", "ts_ms": ts_ms, "source": source, "transaction": None}
    return json.dumps({"schema": {}, "payload": {**payload, "message": {"prefix": "foo", "content": "YmFy"}}}).encode()


HEARTBEAT = json.dumps(
    {
        "schema": {
            "type": "struct",
            "fields": [{"type": "int64", "optional": False, "field": "ts_ms"}],
            "optional": False,
            "name": "io.debezium.connector.common.Heartbeat",
            "version": 1,
        },
        "payload": {"ts_ms": 1764100128000},
    }
).encode()
TRANSACTION_BEGIN = json.dumps(
    {"status": "BEGIN", "id": "571:53195829", "ts_ms": 1486500577125, "event_count": None, "data_collections": None}
).encode()
TRANSACTION_END = json.dumps(
    {
        "status": "END",
        "id": "571:53195832",
        "ts_ms": 1486500577691,
        "event_count": 2,
        "data_collections": [{"data_collection": "s1.a", "event_count": 1}],
    }
).encode()


# The AvroConverter's envelope schema for a PostgreSQL table (Debezium >= 2.6), as registered in the
# schema registry (debezium.md §6): optional columns are unions with null, Debezium's logical types
# carry `connect.name`, Kafka's Decimal also Avro's own `logicalType`.
AVRO_POSTGRES_SOURCE = {
    "type": "record",
    "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "version", "type": "string"},
        {"name": "connector", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {
            "name": "snapshot",
            "type": [
                {
                    "type": "string",
                    "connect.version": 1,
                    "connect.parameters": {"allowed": "true,last,false,incremental"},
                    "connect.default": "false",
                    "connect.name": "io.debezium.data.Enum",
                },
                "null",
            ],
            "default": "false",
        },
        {"name": "db", "type": "string"},
        {"name": "sequence", "type": ["null", "string"], "default": None},
        {"name": "ts_us", "type": ["null", "long"], "default": None},
        {"name": "ts_ns", "type": ["null", "long"], "default": None},
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "txId", "type": ["null", "long"], "default": None},
        {"name": "lsn", "type": ["null", "long"], "default": None},
        {"name": "xmin", "type": ["null", "long"], "default": None},
    ],
    "connect.name": "io.debezium.connector.postgresql.Source",
}


def avro_envelope_schema(namespace: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    """`columns` are Avro fields of the row record (`{"name": .., "type": ..}`)."""
    value = {"type": "record", "name": "Value", "fields": columns, "connect.name": f"{namespace}.Value"}
    block = {
        "type": "record",
        "name": "block",
        "namespace": "event",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "total_order", "type": "long"},
            {"name": "data_collection_order", "type": "long"},
        ],
        "connect.version": 1,
        "connect.name": "event.block",
    }
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": namespace,
        "fields": [
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "source", "type": AVRO_POSTGRES_SOURCE},
            {"name": "transaction", "type": ["null", block], "default": None},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
            {"name": "ts_us", "type": ["null", "long"], "default": None},
            {"name": "ts_ns", "type": ["null", "long"], "default": None},
        ],
        "connect.version": 2,
        "connect.name": f"{namespace}.Envelope",
    }


def avro_key_schema(namespace: str) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Key",
        "namespace": namespace,
        "fields": [{"name": "id", "type": "int"}],
        "connect.name": f"{namespace}.Key",
    }


# A Kafka Connect Decimal column (NUMERIC(12, 2)) in Avro: Avro's own decimal plus the Connect names.
AVRO_BALANCE = {
    "name": "balance",
    "type": [
        "null",
        {
            "type": "bytes",
            "scale": 2,
            "precision": 12,
            "connect.version": 1,
            "connect.parameters": {"scale": "2", "connect.decimal.precision": "12"},
            "connect.name": "org.apache.kafka.connect.data.Decimal",
            "logicalType": "decimal",
        },
    ],
    "default": None,
}
