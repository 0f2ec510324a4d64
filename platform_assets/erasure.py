"""The right to erasure: remove a person's keys from every table and every old table version.

    python -m platform_assets.erasure --entity customers --key C000123 [--key ...] [--retention-hours 0]

An erasure is recorded first in `erasure/<entity>` (keys only as HMAC hashes), so that every later
decode of the archive or of Kafka drops those keys, and the records of other entities whose
`subject` field names them (`raw` honours the list on replay). Then those rows are deleted from
landing (the archive: found by decoding each record), quarantine, raw, current and history of every
such entity, and old Delta files are vacuumed so earlier table versions no longer hold them. The
`audit/erasures` table records each request with the rows removed per table and the first day whose
marts counted them, never the values; `erasure_marts_sensor` then rebuilds the marts from that day.
"""

import argparse
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
from dagster import Config, JobDefinition, OpExecutionContext, job, op
from pydantic import Field

from platform_assets.lib.contract import Contract, load_contracts
from platform_assets.lib.decode import (
    Decoded,
    LandingRecord,
    SchemaLookup,
    decode,
    landing_record,
    named_subject,
    record_identity,
)
from platform_assets.lib.pii import hash_value, pii_key, protect
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

ERASURE_SCHEMA = pa.schema(
    [("key_hash", pa.string()), ("request_id", pa.string()), ("requested_at", pa.timestamp("us", "UTC"))]
)
AUDIT_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("entity", pa.string()),
        ("requested_at", pa.timestamp("us", "UTC")),
        ("keys", pa.int64()),
        ("rows_removed", pa.string()),
        ("retention_hours", pa.int64()),
        ("verified", pa.bool_()),
        ("marts_from_day", pa.date32()),
    ]
)
POSITION_COLUMNS = ("_topic", "_partition", "_offset")  # where raw and quarantine keep a record's Kafka position
# The layers that hold rows by key after landing (tombstones keep the key of a deleted row).
KEYED_LAYERS = ("raw", "current", "current_tombstones", "history", "history_tombstones")
ERASED_LAYERS = ("landing", "quarantine", *KEYED_LAYERS)


class ErasureError(RuntimeError):
    """An erasure that could not be proven complete."""


@dataclass(frozen=True)
class Target:
    """The rows of one entity that an erasure removes: those of its own keys (`subject_field` None),
    or those whose `subject_field` names an erased person of another entity."""

    contract: Contract
    subject_field: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return self.contract.key if self.subject_field is None else (self.subject_field,)

    def named(self, record: LandingRecord, decoded: Decoded, schema_lookup: SchemaLookup | None) -> str | None:
        """Who a landed record is about, in the form erasure requests name keys."""
        if self.subject_field is None:
            return record_identity(self.contract, record, decoded)
        return named_subject(self.contract, record, decoded, self.subject_field, schema_lookup)

    def named_by_bytes(self, record: LandingRecord, schema_lookup: SchemaLookup | None) -> str | None:
        """`named` for a record not decoded yet (the archive, quarantine)."""
        return self.named(record, decode(self.contract, record, schema_lookup), schema_lookup)

    def stored(self, keys: list[str], secret: bytes) -> set[tuple]:
        """The keys as the target's fields hold them after landing: typed (a request names `123` for an
        integer key) and hashed there if the contract says so."""
        result = set()
        for identity in keys:
            parts = identity.split("|")
            try:
                typed = {
                    name: int(part) if self.contract.field(name).type in ("int", "long") else part
                    for name, part in zip(self.fields, parts, strict=True)
                }
            except ValueError as error:
                raise ErasureError(
                    f"key `{identity}` does not fit the key of {self.contract.name} ({' | '.join(self.fields)}): "
                    "give one value per field, joined with `|` in contract order, integers for integer fields"
                ) from error
            values = protect(self.contract, typed, secret)
            result.add(tuple(values[name] for name in self.fields))
        return result

    def predicate(self, keys: list[str], secret: bytes) -> str:
        clauses = (
            " AND ".join(f"{name} = {_literal(value)}" for name, value in zip(self.fields, row, strict=True))
            for row in sorted(self.stored(keys, secret))
        )
        return " OR ".join(f"({clause})" for clause in clauses)


def erasure_targets(subject: Contract, contracts: Iterable[Contract]) -> list[Target]:
    """Every entity's rows that name a person of `subject`: its own, and those of its `subject` fields."""
    return [
        Target(subject),
        *(Target(c, spec.name) for c in contracts for spec in c.fields if spec.subject == subject.name),
    ]


def _erased_hashes(lake: LakeResource, entity: str) -> set[str]:
    return set(lake.read("erasure", entity, schema=ERASURE_SCHEMA).column("key_hash").to_pylist())


def erased_record_test(
    lake: LakeResource, contract: Contract, secret: bytes, schema_lookup: SchemaLookup | None = None
) -> Callable[[LandingRecord, Decoded], bool]:
    """Whether a record is about an erased key of its entity, or names an erased subject of another."""
    watched = [(Target(contract), contract.name)] + [
        (Target(contract, spec.name), spec.subject) for spec in contract.fields if spec.subject is not None
    ]
    checks = [(target, hashes) for target, entity in watched if (hashes := _erased_hashes(lake, entity))]
    if not checks:
        return lambda record, decoded: False

    def is_erased(record: LandingRecord, decoded: Decoded) -> bool:
        for target, hashes in checks:
            named = target.named(record, decoded, schema_lookup)
            if named is not None and hash_value(named, secret) in hashes:
                return True
        return False

    return is_erased


def _quoted(values: list) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def _literal(value: str | int) -> str:
    return str(value) if isinstance(value, int) else _quoted([value])


def _positions_predicate(positions: list[tuple[str, int, int]], topic: str, partition: str, offset: str) -> str:
    by_partition: dict[tuple[str, int], list[int]] = {}
    for t, p, o in positions:
        by_partition.setdefault((t, p), []).append(o)
    return " OR ".join(
        f"({topic} = {_quoted([t])} AND {partition} = {p} AND {offset} IN ({', '.join(map(str, sorted(os)))}))"
        for (t, p), os in sorted(by_partition.items())
    )


def _first_day(lake: LakeResource, entity: str, predicate: str) -> date | None:
    """The first day on which raw holds the rows about to be erased: the marts count them from there."""
    first = lake.select("raw", entity, f"select min(_event_hour) as first from raw where {predicate}")
    moment = first.column("first")[0].as_py() if first is not None else None
    return moment.date() if moment is not None else None


def _landed_positions(
    target: Target, keys: set[str], lake: LakeResource, schema_lookup: SchemaLookup | None
) -> list[tuple[str, int, int]]:
    landed = lake.table("landing", target.contract.name)
    if landed is None:
        return []
    positions = []
    for row in landed.to_pyarrow_dataset().to_table().to_pylist():
        record = landing_record(row)
        if target.named_by_bytes(record, schema_lookup) in keys:
            positions.append((record.topic, record.partition, record.offset))
    return positions


def erase(
    subject: Contract,
    keys: list[str],
    lake: LakeResource,
    contracts: Iterable[Contract],
    retention_hours: int = 0,
    request_id: str | None = None,
    schema_lookup: SchemaLookup | None = None,
) -> dict:
    """Erase the keys of one entity, and the rows of other entities that name them; returns the audit record."""
    secret = pii_key()
    targets = erasure_targets(subject, contracts)
    for target in targets:  # a key that cannot be read is refused before anything is written
        target.stored(keys, secret)
    request_id = request_id or str(uuid.uuid4())
    requested_at = datetime.now(UTC)
    hashes = [hash_value(identity, secret) for identity in keys]
    lake.append(
        "erasure",
        subject.name,
        pa.Table.from_pylist(
            [{"key_hash": h, "request_id": request_id, "requested_at": requested_at} for h in hashes], ERASURE_SCHEMA
        ),
    )
    removed: dict[str, int] = {}
    first_days = []
    for target in targets:
        entity = target.contract.name
        positions = _landed_positions(target, set(keys), lake, schema_lookup)
        for layer, columns in (("landing", ("topic", "partition", "offset")), ("quarantine", POSITION_COLUMNS)):
            predicate = _positions_predicate(positions, *columns)
            removed[f"{layer}/{entity}"] = lake.delete_where(layer, entity, predicate) if positions else 0
        predicate = target.predicate(keys, secret)
        first_days.append(_first_day(lake, entity, predicate))
        for layer in KEYED_LAYERS:
            removed[f"{layer}/{entity}"] = lake.delete_where(layer, entity, predicate)
        for layer in ERASED_LAYERS:
            table = lake.table(layer, entity)
            if table is not None:
                table.vacuum(retention_hours=retention_hours, enforce_retention_duration=False, dry_run=False)
    found = find_keys(targets, keys, lake, schema_lookup)
    audit = {
        "request_id": request_id,
        "entity": subject.name,
        "requested_at": requested_at,
        "keys": len(keys),
        "rows_removed": json.dumps(removed, sort_keys=True),
        "retention_hours": retention_hours,
        "verified": not found,
        "marts_from_day": min((day for day in first_days if day is not None), default=None),
    }
    lake.append("audit", "erasures", pa.Table.from_pylist([audit], AUDIT_SCHEMA))
    if found:
        raise ErasureError(
            f"erasure {request_id} of {subject.name}: keys still found in {found}; older versions are kept while "
            "the retention window holds them: rerun with --retention-hours 0 or wait for the window to pass"
        )
    return audit


def find_keys(
    targets: list[Target], keys: list[str], lake: LakeResource, schema_lookup: SchemaLookup | None = None
) -> dict[str, int]:
    """Rows about the keys in every target table and every table version that can still be read."""
    secret = pii_key()
    wanted = set(keys)
    found: dict[str, int] = {}
    for target in targets:
        stored = target.stored(keys, secret)
        for layer in ERASED_LAYERS:
            table = lake.table(layer, target.contract.name)
            if table is None:
                continue
            for version in range(table.version() + 1):
                try:
                    table.load_as_version(version)
                    rows = table.to_pyarrow_dataset().to_table().to_pylist()
                except Exception:  # the version's files were vacuumed: nothing of it can be read any more
                    continue
                hits = sum(1 for row in rows if _names_a_key(target, layer, row, wanted, stored, schema_lookup))
                if hits:
                    found[f"{layer}/{target.contract.name}@v{version}"] = hits
    return found


def _names_a_key(
    target: Target, layer: str, row: dict, wanted: set[str], stored: set[tuple], schema_lookup: SchemaLookup | None
) -> bool:
    if layer == "landing":
        return target.named_by_bytes(landing_record(row), schema_lookup) in wanted
    if layer == "quarantine":
        record = LandingRecord(row["_topic"], row["_partition"], row["_offset"], 0, row["key"], row["value"], ())
        return target.named_by_bytes(record, schema_lookup) in wanted
    return tuple(row[name] for name in target.fields) in stored


class ErasureConfig(Config):
    entity: str = Field(description="The entity (contract name) whose keys are erased.")
    keys: list[str] = Field(description="Keys to erase; multi-field keys joined with `|` in contract order.")
    retention_hours: int = Field(default=0, description="Keep Delta files younger than this (0: remove now).")


def build_erasure_job(contracts: list[Contract]) -> JobDefinition:
    by_name = {c.name: c for c in contracts}

    @op(
        description="Erase keys, and the rows of other entities that name them, from landing, quarantine, raw, "
        "current and history; vacuum, verify and audit."
    )
    def erase_keys(
        context: OpExecutionContext, config: ErasureConfig, lake: LakeResource, schema_registry: SchemaRegistryResource
    ) -> None:
        if config.entity not in by_name:
            raise ValueError(f"no contract named `{config.entity}`; entities are {sorted(by_name)}")
        audit = erase(
            by_name[config.entity],
            config.keys,
            lake,
            contracts,
            config.retention_hours,
            request_id=context.run_id,
            schema_lookup=schema_registry.lookup(),
        )
        context.log.info(f"erasure {audit['request_id']}: rows removed {audit['rows_removed']}; verified")

    @job(
        name="erasure_job",
        description="Right to erasure: remove keys of an entity from every table and old table version.",
        tags={"layer": "erasure"},
    )
    def erasure_job() -> None:
        erase_keys()

    return erasure_job


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="platform_assets.erasure", description=__doc__)
    parser.add_argument("--entity", required=True)
    parser.add_argument("--key", action="append", required=True, help="a key to erase (repeat for more)")
    parser.add_argument("--retention-hours", type=int, default=0)
    args = parser.parse_args(argv)
    contracts = load_contracts()
    by_name = {c.name: c for c in contracts}
    if args.entity not in by_name:
        parser.error(f"no contract named `{args.entity}`; entities are {sorted(by_name)}")
    audit = erase(
        by_name[args.entity],
        args.key,
        LakeResource.from_env(),
        contracts,
        args.retention_hours,
        schema_lookup=SchemaRegistryResource.from_env().lookup(),
    )
    print(json.dumps(audit, default=str))


if __name__ == "__main__":
    main()
