"""Table maintenance: compact the small files that hourly appends and merges leave, then vacuum the files
no recent table version needs and the log files a checkpoint covers.

Vacuum keeps every file younger than `retention_hours` (7 days by default, at least a day): far longer
than any run, so a run or reader that started from an older version (a long backfill) still finds its
files. Compaction rewrites files without changing rows or column types, and keeps the landing table's
app transactions, which live in the log. Each table's op takes the pool of the asset that writes it,
so maintenance never runs beside a writer of the same table. Checkpoints are written by the writes
themselves (LakeResource.checkpoint_if_due).
"""

# No `from __future__ import annotations`: Dagster resolves the ops' config annotation at definition time.

from dagster import (
    Config,
    DefaultScheduleStatus,
    GraphDefinition,
    JobDefinition,
    OpDefinition,
    OpExecutionContext,
    ScheduleDefinition,
    op,
)
from pydantic import Field

from platform_assets.entity import lake_pool
from platform_assets.lib.contract import Contract
from resources.lake import LakeResource

# Every lake table of an entity, and the layer of the asset that writes it (whose pool it shares).
TABLE_WRITERS = {
    "landing": "landing",
    "raw": "raw",
    "quarantine": "raw",
    "current": "current",
    "current_tombstones": "current",
    "history": "history",
    "history_tombstones": "history",
}
DEFAULT_RETENTION_HOURS = 7 * 24


class MaintenanceConfig(Config):
    retention_hours: int = Field(
        default=DEFAULT_RETENTION_HOURS,
        ge=24,
        description="Vacuum keeps files younger than this; longer than any run (at least 24).",
    )


def maintain_table(lake: LakeResource, layer: str, entity: str, retention_hours: int) -> dict[str, int]:
    """Compact, vacuum and clean up the log of one table; what was done (nothing for a missing table)."""
    table = lake.table(layer, entity)
    if table is None:
        return {}
    compacted = table.optimize.compact()
    vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False)
    table.create_checkpoint()  # the log files before it can go; readers start from it
    table.cleanup_metadata()
    return {
        "files_compacted": int(compacted["numFilesRemoved"]),
        "files_written": int(compacted["numFilesAdded"]),
        "files_vacuumed": len(vacuumed),
        "version": table.version(),
    }


def _maintenance_op(contract: Contract, layer: str) -> OpDefinition:
    @op(
        name=f"maintain_{layer}_{contract.name}",
        description=f"Compact and vacuum `{layer}/{contract.name}`.",
        pool=lake_pool(contract, TABLE_WRITERS[layer]),
    )
    def maintain(context: OpExecutionContext, config: MaintenanceConfig, lake: LakeResource) -> None:
        done = maintain_table(lake, layer, contract.name, config.retention_hours)
        context.log.info(f"{layer}/{contract.name}: {done or 'no table yet'}")

    return maintain


def build_maintenance_job(contracts: list[Contract]) -> JobDefinition:
    ops = [_maintenance_op(contract, layer) for contract in contracts for layer in TABLE_WRITERS]
    return GraphDefinition(
        name="maintenance_job",
        description="Compact every lake table, vacuum files older than the retention and clean up the logs.",
        node_defs=ops,
    ).to_job(tags={"layer": "maintenance"})


def build_maintenance_schedule(job: JobDefinition) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="maintenance_schedule",
        job=job,
        cron_schedule="0 3 * * 0",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Weekly table maintenance (Sunday 03:00 UTC), outside the hourly and daily runs' minutes.",
    )
