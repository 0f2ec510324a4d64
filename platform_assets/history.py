"""History: for every key alive at the end of day D, its newest state (daily partitions).

Day D is computed from day D-1 plus the changes of D, and each run rewrites D-1 and D in one atomic
Delta commit, so reruns are idempotent and a late event for yesterday is picked up by today's run.
"""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from platform_assets import checks
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
from platform_assets.lib.tables import history_schema
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions
from platform_assets.quality import history_rules, validate_table
from platform_assets.retries import retry_transient_failures
from resources.lake import LakeResource
from resources.spark import SparkResource
from spark.cdc import history_days


def build_history_asset(contract: Contract, partitions: Partitions = DEFAULT_PARTITIONS):
    history_key = asset_key("history", contract)

    @asset(
        key=history_key,
        description=(
            f"State of every {contract.name} key alive at the end of each day (`snapshot_date`); a key deleted on a "
            f"day is absent from that day on (its tombstones, kept in history_tombstones/{contract.name}, keep the "
            "next days exact)."
        ),
        **entity_asset_properties(contract, "history"),
        kinds={"spark", "delta"},
        # Day D is computed from day D-1: the self-dependency makes Dagster run days in order in any
        # backfill that is split into runs.
        deps=[
            asset_key("current", contract),
            AssetDep(history_key, partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)),
        ],
        partitions_def=partitions.daily,
        backfill_policy=BackfillPolicy.single_run(),
        metadata={"dagster/column_schema": column_schema(history_schema(contract), contract)},
        check_specs=[checks.spec(history_key, checks.ONE_ROW_PER_KEY_PER_DAY)],
        pool=lake_pool(contract, "history"),
    )
    def history_asset(context: AssetExecutionContext, lake: LakeResource, spark: SparkResource) -> Iterator[Any]:
        started = time.monotonic()
        window = context.partition_time_window
        first, last = window.start.date(), (window.end - timedelta(days=1)).date()
        platform_start = partitions.daily.start.date()
        first = max(platform_start, first - timedelta(days=1))
        layers = ("history", "history_tombstones")
        ensure_tables(lake, contract, layers)
        with (
            retry_transient_failures(),
            lake.checkpointing(layers, contract.name),
            erasures_reapplied(lake, contract, layers) as erased_during_run,
        ):
            session = spark.session()
            rows = history_days(
                session,
                lake.uri("history", contract.name),
                lake.uri("history_tombstones", contract.name),
                lake.uri("raw", contract.name),
                first,
                last,
                merge_spec(contract),
            )
        # A range run's metadata is recorded on every day of the range: a row count of one day would
        # be wrong on the others, so it is given only when the run covers one day.
        one_day = context.partition_key_range.start == context.partition_key_range.end
        yield MaterializeResult(
            metadata={
                **({"dagster/row_count": rows[last.isoformat()]} if one_day else {}),
                "live_rows_per_day": MetadataValue.json(rows),
                "days_rewritten": MetadataValue.json(sorted(rows)),
                "table_version": lake.version("history", contract.name) or 0,
                "duration_s": round(time.monotonic() - started, 3),
                # People an erasure removed while this run merged, removed again after its commits.
                **({"erased_during_run": MetadataValue.json(erased_during_run)} if erased_during_run else {}),
            }
        )

        days_filter = (pc.field("snapshot_date") >= pa.scalar(first, pa.date32())) & (
            pc.field("snapshot_date") <= pa.scalar(last, pa.date32())
        )
        days_predicate = f"snapshot_date >= '{first}' AND snapshot_date <= '{last}'"  # opens those days' files only
        days = lake.read("history", contract.name, days_filter, files_where=days_predicate)
        outcomes = validate_table(days, history_rules(contract))
        yield checks.from_outcomes(history_key, checks.ONE_ROW_PER_KEY_PER_DAY, f"{first}..{last}", outcomes)

    return history_asset
