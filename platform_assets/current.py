"""Current: one row per live key, maintained by an ordered merge on Spark (`spark.cdc.merge_into_current`).

Partition H applies the changes of raw hour H. Because the merge only lets a change win when it is at
least as new as the stored one, partitions can be applied in any order and any number of times, and a
backfill re-applies fixed logic to exactly the keys whose newest change lies in the backfilled hours.
Readers see live rows only: the tombstones of deleted keys, which stop a late older update from
reviving them, are kept beside it in `current_tombstones/<entity>`.
"""

import time
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from platform_assets import checks
from platform_assets.entity import (
    asset_key,
    column_schema,
    ensure_tables,
    entity_asset_properties,
    freshness_policy,
    lake_pool,
    merge_spec,
    partition_label,
)
from platform_assets.erasure import erasures_reapplied
from platform_assets.lib.contract import Contract
from platform_assets.lib.records import snapshot_topic
from platform_assets.lib.tables import current_schema
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions
from platform_assets.retries import retry_transient_failures
from resources.lake import LakeResource
from resources.spark import SparkResource
from spark.cdc import (
    changes_between,
    duplicate_keys,
    merge_into_current,
    rebuild_current,
    row_count,
    since_latest_snapshot,
)


class CurrentConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description="Rebuild current from the latest full snapshot plus every later raw change (every change "
        "when there is no snapshot) instead of merging this run's hours; use it after a logic fix that spans "
        "all history.",
    )


def build_current_asset(contract: Contract, partitions: Partitions = DEFAULT_PARTITIONS):
    current_key = asset_key("current", contract)

    @asset(
        key=current_key,
        description=(
            f"Newest state of every live {contract.name} key, one row per key. Deleted keys are absent; their "
            f"tombstones, kept in current_tombstones/{contract.name}, stop late older updates from reviving them."
        ),
        **entity_asset_properties(contract, "current"),
        kinds={"spark", "delta"},
        deps=[asset_key("raw", contract)],
        partitions_def=partitions.hourly,
        backfill_policy=BackfillPolicy.single_run(),
        freshness_policy=freshness_policy(contract, partitions.freshness_hour_s),
        metadata={"dagster/column_schema": column_schema(current_schema(contract), contract)},
        check_specs=[checks.spec(current_key, checks.UNIQUE_KEY)],
        pool=lake_pool(contract, "current"),
    )
    def current_asset(
        context: AssetExecutionContext, config: CurrentConfig, lake: LakeResource, spark: SparkResource
    ) -> Iterator[Any]:
        started = time.monotonic()
        window = context.partition_time_window
        layers = ("current", "current_tombstones")
        ensure_tables(lake, contract, layers)
        current_uri, tombstones_uri = (lake.uri(layer, contract.name) for layer in layers)
        with (
            retry_transient_failures(),
            lake.checkpointing(layers, contract.name),
            erasures_reapplied(lake, contract, layers) as erased_during_run,
        ):
            session = spark.session()
            if config.full_refresh:
                every_change = session.read.format("delta").load(lake.uri("raw", contract.name))
                changes = since_latest_snapshot(every_change, snapshot_topic(contract.name))
                stats = rebuild_current(
                    session, changes, current_uri, tombstones_uri, merge_spec(contract), as_of=window.end
                )
            else:
                changes = changes_between(session, lake.uri("raw", contract.name), window.start, window.end)
                stats = merge_into_current(
                    session, changes, current_uri, tombstones_uri, merge_spec(contract), as_of=window.end
                )
            duplicates = duplicate_keys(session, current_uri, contract.key)
            live, tombstones = row_count(session, current_uri), row_count(session, tombstones_uri)
        yield MaterializeResult(
            # Whole-table counts, named as such: `dagster/row_count` means the rows of a partition
            # (as on raw), and current is one table that every hour merges into.
            metadata={
                "table_live_rows": live,
                "changes_in": stats["changes_in"],
                "tombstones_expired": stats["tombstones_expired"],
                "full_refresh": config.full_refresh,
                "table_tombstones": tombstones,
                "table_version": lake.version("current", contract.name) or 0,
                "duration_s": round(time.monotonic() - started, 3),
                # People an erasure removed while this run merged, removed again after its commits.
                **({"erased_during_run": MetadataValue.json(erased_during_run)} if erased_during_run else {}),
            }
        )
        yield checks.unique_key(current_key, partition_label(context), duplicates, contract.key)

    return current_asset
