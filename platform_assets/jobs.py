"""The jobs of the code location: one per cadence over the asset graph (landing drains, hourly layers,
daily layers), and the erasure job. Partitioned jobs take their partitions from the assets they select."""

from dagster import AssetSelection, Config, JobDefinition, OpExecutionContext, define_asset_job, job, op
from pydantic import Field

from platform_assets.erasure import erase
from platform_assets.lib.contract import Contract
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

# Runs the platform starts by itself (sensors, schedules) queue behind runs a person started: manual
# runs and backfills carry the default priority 0, and the queue daemon dequeues the highest first.
AUTOMATIC_PRIORITY = {"dagster/priority": "-1"}

landing_job = define_asset_job(
    "landing_job",
    selection=AssetSelection.key_prefixes("landing"),
    description="Drain every entity's topics into its landing table (exactly once).",
    tags={"layer": "landing"},
)
hourly_job = define_asset_job(
    "hourly_job",
    selection=AssetSelection.key_prefixes("raw", "quarantine", "current", "scd2"),
    description="Decode landed records of an hour into raw (and quarantine) and merge them into current and scd2.",
)
daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.key_prefixes("history", "staging", "marts"),
    description="Recompute history for a day (and the day before) and rebuild the day's KPI marts.",
)


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
        context.log.info(
            f"erasure {audit['request_id']}: rows removed {audit['rows_removed']}; verified; "
            f"seconds by stage {audit['stage_seconds']}"
        )

    @job(
        name="erasure_job",
        description="Right to erasure: remove keys of an entity from every table and old table version.",
        tags={"layer": "erasure"},
    )
    def erasure_job() -> None:
        erase_keys()

    return erasure_job
