"""What every asset of one entity's chain shares: keys, table layouts as the UI shows them, partition
labels, the merge rules, and group, owners, tags and pools. The layer modules import this and never
each other: they are peers tied only by asset keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
from dagster import AssetExecutionContext, AssetKey, FreshnessPolicy, TableColumn, TableSchema

from platform_assets.lib.contract import Contract, ContractError
from platform_assets.lib.evolution import breaking_changes, identity_properties, migration_hint
from platform_assets.lib.ordering import order_columns
from platform_assets.lib.tables import (
    LANDING_SCHEMA,
    QUARANTINE_SCHEMA,
    current_schema,
    history_schema,
    raw_keys_fields,
    raw_keys_rows,
    raw_keys_schema,
    raw_schema,
    scd2_schema,
)
from resources.lake import IncompatibleSchemaError, LakeResource, schema_change, stored_schema
from spark.cdc import MergeSpec


def layer_asset_key(layer: str, entity: str) -> AssetKey:
    """`<layer>/<layer>_<entity>`, e.g. `raw/raw_customers`. The prefix selects a layer (`key:"raw/*"`);
    the last component names layer and entity because it is all a lineage-graph node shows."""
    return AssetKey([layer, f"{layer}_{entity}"])


def asset_key(layer: str, contract: Contract) -> AssetKey:
    """The key of the entity's asset in `layer` (`landing`, `raw`, `quarantine`, `current`, ...)."""
    return layer_asset_key(layer, contract.name)


def entity_asset_properties(contract: Contract, layer: str) -> dict[str, Any]:
    """Group, owners and tags of the entity's asset in `layer` (keyword arguments of `@asset` and `AssetSpec`)."""
    return {
        "group_name": contract.name,
        "owners": [f"team:{contract.owner}"] if contract.owner else None,
        "tags": {"layer": layer, "entity": contract.name},
    }


def freshness_policy(contract: Contract, hour_s: float = 3600.0) -> FreshnessPolicy | None:
    """Fresh while the asset was materialized within the contract's `quality.freshness_hours`. Dagster's
    freshness daemon judges it on its own clock, without any run, so a stalled entity turns red."""
    hours = contract.quality.freshness_hours
    return FreshnessPolicy.time_window(fail_window=timedelta(seconds=hours * hour_s)) if hours else None


def lake_pool(contract: Contract, layer: str) -> str:
    """The concurrency pool of the lake table an asset writes: one writer at a time per Delta table."""
    return f"lake_{layer}_{contract.name}"


def column_schema(schema: pa.Schema, contract: Contract) -> TableSchema:
    """A table layout as the Dagster UI shows it, with the contract's field descriptions."""
    descriptions = {spec.name: spec.description for spec in contract.fields}
    return TableSchema(
        columns=[TableColumn(f.name, str(f.type), description=descriptions.get(f.name, "")) for f in schema]
    )


def partition_label(context: AssetExecutionContext) -> str:
    """The partition (or range) a run covers, as check messages name it."""
    keys = context.partition_key_range
    return keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"


def merge_spec(contract: Contract) -> MergeSpec:
    """What the Spark merges of `current`, `history` and `scd2` need to know of the entity."""
    return MergeSpec(
        key=contract.key,
        order=order_columns(contract),
        columns=tuple(f.name for f in current_schema(contract)),
        event_time=contract.event_time_column,
        tombstone_retention_days=contract.tombstone_retention_days,
        truncatable=contract.orders_by_source_position,
    )


# Each layer's table layout, and the column its files are partitioned by. Raw and quarantine: the event
# hour, the unit their runs replace, so a run rewrites its hours' files only. Unpartitioned, a run that
# replaces a late hour rewrites every file whose hours span it, with the new rows, into one file: with
# late data every hour, files merge until each hourly run rewrites the whole table. Landing: the event
# hour too, the unit raw reads and upkeep compacts; unpartitioned, the daily upkeep clustered the whole
# archive into new files every day, and an erasure rewrote a compacted file of every hour to remove a
# person's records of one.
TABLE_LAYOUTS = {
    "landing": (lambda contract: LANDING_SCHEMA, "_event_hour"),
    "raw_keys": (raw_keys_schema, "_event_date"),
    "raw": (raw_schema, "_event_hour"),
    "quarantine": (lambda contract: QUARANTINE_SCHEMA, "_event_hour"),
    "current": (current_schema, None),
    "current_tombstones": (current_schema, None),
    "history": (history_schema, "snapshot_date"),
    "history_tombstones": (history_schema, "snapshot_date"),
    "scd2": (scd2_schema, None),
    "scd2_tombstones": (current_schema, None),
}


class ContractChangeError(ContractError):
    """A contract changed in a way its stored tables cannot follow in place."""


def ensure_tables(lake: LakeResource, contract: Contract, layers: tuple[str, ...]) -> None:
    """Bring the entity's tables in `layers` to the contract's layouts before anything writes to them.

    Missing tables are created (all columns nullable); new fields are added, widened fields rewritten,
    removed fields kept as columns no longer filled. A change the tables cannot follow in place raises
    `ContractChangeError` naming the contract, the field, the old and new definitions and the way forward.
    """
    if "raw" in layers:
        changes = breaking_changes(lake.properties("raw", contract.name), contract)
        if changes:
            raise ContractChangeError(_refusal(contract, changes))
    for layer in layers:
        schema_of, partition_column = TABLE_LAYOUTS[layer]
        partition_by = [partition_column] if partition_column else None
        if layer == "raw_keys" and lake.table(layer, contract.name) is None:
            _create_raw_keys(lake, contract, partition_by)
        try:
            lake.evolve(layer, contract.name, schema_of(contract), partition_by)
        except IncompatibleSchemaError as error:
            raise ContractChangeError(_refusal(contract, [str(error)])) from error
    if "raw" in layers:
        lake.set_properties("raw", contract.name, identity_properties(contract))


def _indexed_app_id(field: str) -> str:
    """The app transaction the commit that creates `raw_keys` records for each field it holds for every
    raw row: a field added later (a field newly declared a subject) is null in the rows indexed before."""
    return f"raw_keys:{field}"


def _every_row_indexed(contract: Contract) -> dict[str, int]:
    """The app transactions that say `raw_keys` holds each of the contract's fields for every raw row."""
    return {_indexed_app_id(field): 0 for field in raw_keys_fields(contract)}


def _create_raw_keys(lake: LakeResource, contract: Contract, partition_by: list[str] | None) -> None:
    """Create `raw_keys` holding the keys of every row raw holds already, in the commit that creates it:
    each raw run adds its rows' keys to the table before committing them, so from its first version on
    it names every hour of raw that holds a key (once, for a raw table older than the index, by reading
    all of raw)."""
    fields = raw_keys_fields(contract)
    stored = lake.select("raw", contract.name, f"select distinct {', '.join([*fields, '_event_hour'])} from raw")
    lake.create_if_missing(
        "raw_keys",
        contract.name,
        raw_keys_schema(contract),
        partition_by,
        rows=None if stored is None or not stored.num_rows else raw_keys_rows(contract, stored),
        app_transactions=_every_row_indexed(contract),
    )


def replace_raw(lake: LakeResource, contract: Contract, rows: pa.Table, predicate: str) -> None:
    """Replace raw's rows matching `predicate` by `rows`, their keys added to `raw_keys` first: an erasure
    that reads `raw_keys` between the two commits finds an hour raw does not hold yet, never misses one it
    holds. Keys of rows a later run replaces stay: they only send an erasure to look in an hour.

    Only keys the index does not hold for their hour are added: the lag sensor has an hour decoded again
    after every landing run, and appending all of its keys each time made the index, and an erasure's
    look-up in it, grow with the number of runs (about three times the distinct keys of 30 days in the
    benchmark's archive, more with a run every few minutes)."""
    if rows.num_rows:
        held = lake.read("raw_keys", contract.name, schema=raw_keys_schema(contract), files_where=predicate)
        added = raw_keys_rows(contract, rows, held)
        if added.num_rows:
            lake.append("raw_keys", contract.name, added)
    lake.replace_where("raw", contract.name, rows, predicate)


def raw_keys_cover(lake: LakeResource, entity: str, fields: tuple[str, ...]) -> bool:
    """Whether `raw_keys` has held `fields` for every raw row since it was created (or published)."""
    return all(lake.transaction_version("raw_keys", entity, _indexed_app_id(field)) is not None for field in fields)


def raw_keys_published(lake: LakeResource, contract: Contract) -> None:
    """Record that a `raw_keys` table published beside its raw table (rebuilt from it) holds every key."""
    nothing = pa.Table.from_batches([], schema=raw_keys_schema(contract))
    lake.append("raw_keys", contract.name, nothing, app_transactions=_every_row_indexed(contract))


def contract_changes_refused(lake: LakeResource, contract: Contract) -> str | None:
    """Why the stored tables cannot follow `contract` in place (None when they can): read at load time,
    so a breaking change is refused before any run, naming what to do."""
    changes = breaking_changes(lake.properties("raw", contract.name), contract)
    for layer in ("raw", "current", "history", "scd2"):
        table = lake.table(layer, contract.name)
        if table is None:
            continue
        schema_of, _ = TABLE_LAYOUTS[layer]
        changes += [f"{layer}: {narrowed}" for narrowed in _narrowed(stored_schema(table), schema_of(contract))]
    return _refusal(contract, sorted(set(changes))) if changes else None


def changes_refused_between(old: Contract, new: Contract) -> list[str]:
    """How tables written under `old` could not follow `new` in place: the rules of `ensure_tables`
    and `contract_changes_refused`, applied to a proposed contract before any table sees it."""
    return breaking_changes(identity_properties(old), new) + _narrowed(raw_schema(old), raw_schema(new))


def _narrowed(stored: pa.Schema, wanted: pa.Schema) -> list[str]:
    return [
        f"field `{old.name}` changed from {old.type} to {new.type}, which does not hold every stored value"
        for old, new in schema_change(stored, wanted).incompatible
    ]


def _refusal(contract: Contract, changes: list[str]) -> str:
    return f"{contract.path}: contract `{contract.name}` changed incompatibly: {'; '.join(changes)}. " + (
        migration_hint(contract)
    )
