"""The right to erasure: remove a person's keys from every table and every old table version.

    python -m platform_assets.erasure --entity customers --key C000123 [--key ...] [--retention-hours 0]

An erasure is recorded first in `erasure/<entity>` (keys only as HMAC hashes), so that every later
decode of the archive or of Kafka drops those keys (`raw` honours the list on replay). Then the keys'
rows are deleted from landing (the archive: found by decoding each record), quarantine, raw, current
and history, and old Delta files are vacuumed so earlier table versions no longer hold them. The
`audit/erasures` table records each request with the rows removed per table, never the values.
"""

import argparse
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
from dagster import Config, JobDefinition, OpExecutionContext, job, op
from pydantic import Field

from platform_assets.lib.contract import Contract, load_contracts
from platform_assets.lib.decode import LandingRecord, decode, landing_record, record_identity
from platform_assets.lib.pii import hash_value, pii_key, protect
from resources.lake import LakeResource

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
    ]
)
# The layers that hold rows by key after landing (tombstones keep the key of a deleted row).
KEYED_LAYERS = ("raw", "current", "current_tombstones", "history", "history_tombstones")
ERASED_LAYERS = ("landing", "quarantine", *KEYED_LAYERS)


class ErasureError(RuntimeError):
    """An erasure that could not be proven complete."""


def erased_key_test(lake: LakeResource, entity: str, key: bytes) -> Callable[[str], bool]:
    """Whether a key is under an erasure request of the entity (the list holds HMAC hashes)."""
    hashes = set(lake.read("erasure", entity, schema=ERASURE_SCHEMA).column("key_hash").to_pylist())
    if not hashes:
        return lambda identity: False
    return lambda identity: hash_value(identity, key) in hashes


def _quoted(values: list) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def _key_predicate(contract: Contract, keys: list[str], key: bytes) -> str:
    """Rows of the keys as stored after landing (key fields hashed there if the contract says so)."""
    clauses = []
    for identity in keys:
        parts = identity.split("|")
        stored = protect(contract, dict(zip(contract.key, parts, strict=True)), key)
        clauses.append(" AND ".join(f"{name} = {_quoted([stored[name]])}" for name in contract.key))
    return " OR ".join(f"({clause})" for clause in clauses)


def _positions_predicate(positions: list[tuple[str, int, int]], topic: str, partition: str, offset: str) -> str:
    by_partition: dict[tuple[str, int], list[int]] = {}
    for t, p, o in positions:
        by_partition.setdefault((t, p), []).append(o)
    return " OR ".join(
        f"({topic} = {_quoted([t])} AND {partition} = {p} AND {offset} IN ({', '.join(map(str, sorted(os)))}))"
        for (t, p), os in sorted(by_partition.items())
    )


def _delete(lake: LakeResource, layer: str, entity: str, predicate: str) -> int:
    table = lake.table(layer, entity)
    if table is None or not predicate:
        return 0
    return int(table.delete(predicate).get("num_deleted_rows", 0))


def erase(
    contract: Contract, keys: list[str], lake: LakeResource, retention_hours: int = 0, request_id: str | None = None
) -> dict:
    """Erase the keys of one entity everywhere; returns the audit record."""
    secret = pii_key()
    request_id = request_id or str(uuid.uuid4())
    requested_at = datetime.now(UTC)
    hashes = [hash_value(identity, secret) for identity in keys]
    lake.append(
        "erasure",
        contract.name,
        pa.Table.from_pylist(
            [{"key_hash": h, "request_id": request_id, "requested_at": requested_at} for h in hashes], ERASURE_SCHEMA
        ),
    )
    wanted = set(keys)
    landed = lake.table("landing", contract.name)
    positions = []
    if landed is not None:
        for row in landed.to_pyarrow_dataset().to_table().to_pylist():
            record: LandingRecord = landing_record(row)
            if record_identity(contract, record, decode(contract, record)) in wanted:
                positions.append((record.topic, record.partition, record.offset))
    removed = {
        "landing": _delete(
            lake, "landing", contract.name, _positions_predicate(positions, "topic", "partition", "offset")
        ),
        "quarantine": _delete(
            lake, "quarantine", contract.name, _positions_predicate(positions, "_topic", "_partition", "_offset")
        ),
    }
    predicate = _key_predicate(contract, keys, secret)
    for layer in KEYED_LAYERS:
        removed[layer] = _delete(lake, layer, contract.name, predicate)
    removed["marts"] = 0  # the marts hold aggregates only; no row names a key
    for layer in ERASED_LAYERS:
        table = lake.table(layer, contract.name)
        if table is not None:
            table.vacuum(retention_hours=retention_hours, enforce_retention_duration=False, dry_run=False)
    found = find_keys(contract, keys, lake)
    audit = {
        "request_id": request_id,
        "entity": contract.name,
        "requested_at": requested_at,
        "keys": len(keys),
        "rows_removed": json.dumps(removed, sort_keys=True),
        "retention_hours": retention_hours,
        "verified": not found,
    }
    lake.append("audit", "erasures", pa.Table.from_pylist([audit], AUDIT_SCHEMA))
    if found:
        raise ErasureError(
            f"erasure {request_id} of {contract.name}: keys still found in {found}; older versions are kept while "
            "the retention window holds them: rerun with --retention-hours 0 or wait for the window to pass"
        )
    return audit


def find_keys(contract: Contract, keys: list[str], lake: LakeResource) -> dict[str, int]:
    """Rows of the keys in every table and every table version that can still be read."""
    secret = pii_key()
    wanted = set(keys)
    stored = {
        tuple(protect(contract, dict(zip(contract.key, k.split("|"), strict=True)), secret)[n] for n in contract.key)
        for k in keys
    }
    found: dict[str, int] = {}
    for layer in ERASED_LAYERS:
        table = lake.table(layer, contract.name)
        if table is None:
            continue
        for version in range(table.version() + 1):
            try:
                table.load_as_version(version)
                rows = table.to_pyarrow_dataset().to_table().to_pylist()
            except Exception:  # the version's files were vacuumed: nothing of it can be read any more
                continue
            if layer == "landing":
                hits = sum(
                    1
                    for row in rows
                    if record_identity(contract, record := landing_record(row), decode(contract, record)) in wanted
                )
            elif layer == "quarantine":
                hits = sum(
                    1 for row in rows if row["key"] is not None and row["key"].decode("utf-8", "replace") in wanted
                )
            else:
                hits = sum(1 for row in rows if tuple(row[n] for n in contract.key) in stored)
            if hits:
                found[f"{layer}@v{version}"] = hits
    return found


class ErasureConfig(Config):
    entity: str = Field(description="The entity (contract name) whose keys are erased.")
    keys: list[str] = Field(description="Keys to erase; multi-field keys joined with `|` in contract order.")
    retention_hours: int = Field(default=0, description="Keep Delta files younger than this (0: remove now).")


def build_erasure_job(contracts: list[Contract]) -> JobDefinition:
    by_name = {c.name: c for c in contracts}

    @op(description="Erase keys from landing, quarantine, raw, current and history, vacuum, verify and audit.")
    def erase_keys(context: OpExecutionContext, config: ErasureConfig, lake: LakeResource) -> None:
        if config.entity not in by_name:
            raise ValueError(f"no contract named `{config.entity}`; entities are {sorted(by_name)}")
        audit = erase(by_name[config.entity], config.keys, lake, config.retention_hours, request_id=context.run_id)
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
    contracts = {c.name: c for c in load_contracts()}
    audit = erase(contracts[args.entity], args.key, LakeResource.from_env(), args.retention_hours)
    print(json.dumps({**audit, "requested_at": audit["requested_at"].isoformat()}))


if __name__ == "__main__":
    main()
