"""Table upkeep: a daily job that keeps every lake table fast for years.

Hourly appends and merges leave many small files; each run of `maintenance_job` compacts them (clustered
by the column readers select on), checkpoints the log, and vacuums files that no table version younger
than the retention needs. The retention (default 7 days) must exceed the longest run: a reader that
started before a vacuum still finds every file of the version it reads. Each table is maintained in
the pool of the asset that writes it, so through the run queue upkeep never runs beside that writer.
"""

from dagster import (
    Config,
    DefaultScheduleStatus,
    JobDefinition,
    OpExecutionContext,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from platform_assets.entity import lake_pool
from platform_assets.lib.contract import Contract
from resources.lake import LakeResource

# Each maintained layer, the layer whose asset writes it (its pool), and the columns its files cluster by.
MAINTAINED = {
    "landing": ("landing", ("_event_hour",)),
    "raw": ("raw", ("_event_hour",)),
    "quarantine": ("raw", ("_event_hour",)),
    "raw_keys": ("raw", ()),
    "current": ("current", ()),
    "current_tombstones": ("current", ()),
    "history": ("history", ()),
    "history_tombstones": ("history", ()),
    "scd2": ("scd2", ()),
    "scd2_tombstones": ("scd2", ()),
}
DEFAULT_RETENTION_HOURS = 168


class MaintenanceConfig(Config):
    retention_hours: int = Field(
        default=DEFAULT_RETENTION_HOURS,
        ge=24,
        description="Keep files that a table version younger than this needs; longer than any run.",
    )


def _maintain_op(contract: Contract, layer: str):
    writer, cluster_by = MAINTAINED[layer]

    @op(
        name=f"maintain_{layer}_{contract.name}",
        description=f"Compact, checkpoint and vacuum {layer}/{contract.name}.",
        pool=lake_pool(contract, writer),
        tags={"entity": contract.name, "layer": layer},
    )
    def maintain(context: OpExecutionContext, config: MaintenanceConfig, lake: LakeResource) -> None:
        report = lake.maintain(layer, contract.name, config.retention_hours, cluster_by)
        context.log.info(f"{layer}/{contract.name}: {report or 'no table yet'}")

    return maintain


def build_maintenance_job(contracts: list[Contract]) -> JobDefinition:
    maintained = [_maintain_op(contract, layer) for contract in contracts for layer in MAINTAINED]

    @job(
        name="maintenance_job",
        description="Compact small files, checkpoint and vacuum every lake table (daily).",
        tags={"layer": "maintenance"},
    )
    def maintenance_job() -> None:
        for maintain in maintained:
            maintain()

    return maintenance_job


def build_maintenance_schedule(maintenance_job: JobDefinition) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="maintenance_schedule",
        job=maintenance_job,
        cron_schedule="15 3 * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Daily table upkeep at 03:15 UTC, when hourly work is light.",
    )
