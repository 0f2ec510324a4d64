"""What every asset of one entity's chain shares: keys, table layouts as the UI shows them, partition
labels, the merge rules, and group, owners, tags and pools. The layer modules import this and never
each other: they are peers tied only by asset keys."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from dagster import AssetExecutionContext, AssetKey, TableColumn, TableSchema

from platform_assets.lib.contract import Contract
from platform_assets.lib.ordering import order_columns
from platform_assets.lib.tables import current_schema, history_schema, raw_schema
from resources.lake import LakeResource
from spark.cdc import MergeSpec


def asset_key(layer: str, contract: Contract) -> AssetKey:
    """The key of the entity's asset in `layer` (`landing`, `raw`, `quarantine`, `current`, ...)."""
    return AssetKey([layer, contract.name])


def entity_asset_properties(contract: Contract, layer: str) -> dict[str, Any]:
    """Group, owners and tags of the entity's asset in `layer` (keyword arguments of `@asset` and `AssetSpec`)."""
    return {
        "group_name": contract.name,
        "owners": [f"team:{contract.owner}"] if contract.owner else None,
        "tags": {"layer": layer, "entity": contract.name},
    }


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
    """What the Spark merges of `current` and `history` need to know of the entity."""
    return MergeSpec(
        key=contract.key,
        order=order_columns(contract),
        columns=tuple(f.name for f in current_schema(contract)),
        event_time=contract.event_time_column,
        tombstone_retention_days=contract.tombstone_retention_days,
        truncatable=contract.orders_by_source_position,
    )


# Each layer's table layout, and the column its files are partitioned by.
TABLE_LAYOUTS = {
    "raw": (raw_schema, None),
    "current": (current_schema, None),
    "current_tombstones": (current_schema, None),
    "history": (history_schema, "snapshot_date"),
    "history_tombstones": (history_schema, "snapshot_date"),
}


def create_tables(lake: LakeResource, contract: Contract, layers: tuple[str, ...]) -> None:
    """Create the entity's tables in `layers` when missing, with their explicit all-nullable layouts."""
    for layer in layers:
        schema_of, partition_column = TABLE_LAYOUTS[layer]
        lake.create_if_missing(
            layer, contract.name, schema_of(contract), partition_by=[partition_column] if partition_column else None
        )
