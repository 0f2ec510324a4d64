"""SCD2: every version of every key, with the interval it was in effect (hourly partitions).

Partition H applies the changes of raw hour H: the keys it touches get their versions recomputed from
their stored versions plus those changes, by the order `current` uses, so partitions can be applied in
any order and any number of times and a late change lands in the interval it belongs to. A version's
`valid_from` is its change's event time (see `platform_assets.lib.scd2`), so the row in effect at the
end of day D is history's row for D.
"""

import time

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from platform_assets.entity import (
    asset_key,
    column_schema,
    ensure_tables,
    entity_asset_properties,
    lake_pool,
    merge_spec,
)
from platform_assets.erasure import erasures_reapplied
from platform_assets.lib.contract import Contract
from platform_assets.lib.tables import scd2_schema
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions
from platform_assets.retries import retry_transient_failures
from resources.lake import LakeResource
from resources.spark import SparkResource
from spark.cdc import changes_between, row_count
from spark.scd2 import merge_into_scd2


def build_scd2_asset(contract: Contract, partitions: Partitions = DEFAULT_PARTITIONS):
    @asset(
        key=asset_key("scd2", contract),
        description=(
            f"Every version of every {contract.name} key, one row each: `valid_from` (the change's event time), "
            "`valid_to` (when the next version or a delete took effect; null while current) and `is_current`. A "
            f"delete closes the interval and has no row of its own; deletes are kept in scd2_tombstones/{contract.name}"
            " so that late changes are placed against them."
        ),
        **entity_asset_properties(contract, "scd2"),
        kinds={"spark", "delta"},
        deps=[asset_key("raw", contract)],
        partitions_def=partitions.hourly,
        backfill_policy=BackfillPolicy.single_run(),
        metadata={"dagster/column_schema": column_schema(scd2_schema(contract), contract)},
        pool=lake_pool(contract, "scd2"),
    )
    def scd2_asset(context: AssetExecutionContext, lake: LakeResource, spark: SparkResource) -> MaterializeResult:
        started = time.monotonic()
        window = context.partition_time_window
        layers = ("scd2", "scd2_tombstones")
        ensure_tables(lake, contract, layers)
        scd2_uri, tombstones_uri = (lake.uri(layer, contract.name) for layer in layers)
        with (
            retry_transient_failures(),
            lake.checkpointing(layers, contract.name),
            erasures_reapplied(lake, contract, layers) as erased_during_run,
        ):
            session = spark.session()
            changes = changes_between(session, lake.uri("raw", contract.name), window.start, window.end)
            stats = merge_into_scd2(session, changes, scd2_uri, tombstones_uri, merge_spec(contract))
            versions, tombstones = row_count(session, scd2_uri), row_count(session, tombstones_uri)
        return MaterializeResult(
            # Whole-table counts, as on current: every hour merges into one table.
            metadata={
                "table_versions": versions,
                "table_tombstones": tombstones,
                "changes_in": stats["changes_in"],
                "table_version": lake.version("scd2", contract.name) or 0,
                "duration_s": round(time.monotonic() - started, 3),
                # People an erasure removed while this run merged, removed again after its commits.
                **({"erased_during_run": MetadataValue.json(erased_during_run)} if erased_during_run else {}),
            }
        )

    return scd2_asset
