"""Full snapshot loads: the source's REST export, kept in landing like any Kafka record.

The rows of a download are landed under the pseudo-topic `_snapshot.<entity>`, stamped with the time
the download started, and decoded into the raw hour of that time; `current` then merges them by
sequence like any change, so a snapshot never overwrites a newer event. `current` with
`full_refresh` rebuilds from the latest snapshot plus every later event.
"""

import json
import time
from datetime import UTC, datetime

import requests
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from platform_assets.entity import asset_key, ensure_tables, entity_asset_properties, lake_pool
from platform_assets.lib.archive import app_id, landing_rows
from platform_assets.lib.contract import Contract
from platform_assets.lib.records import LandingRecord, key_string, snapshot_topic
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions, hour_key
from resources.lake import LakeCommitConflictError, LakeResource


class SnapshotConfig(Config):
    as_of: str | None = Field(
        default=None,
        description="ISO time the download is attributed to (default: when it starts); for reloading an export "
        "taken earlier.",
    )
    page_size: int = Field(default=500, description="Rows per REST page.")


def download(url: str, page_size: int, timeout_s: float = 60.0) -> list[dict]:
    """Every row of a paginated export (`?page=N&page_size=M` answering `{items, next_page}`)."""
    rows: list[dict] = []
    page: int | None = 1
    while page is not None:
        response = requests.get(url, params={"page": page, "page_size": page_size}, timeout=timeout_s)
        response.raise_for_status()
        body = response.json()
        rows.extend(body["items"])
        page = body.get("next_page")
    return rows


def _land_numbered(
    contract: Contract, lake: LakeResource, topic: str, rows: list[dict], stamp: int, first_hour: datetime
) -> int:
    """Land the rows after the last offset of the snapshot pseudo-topic; returns the first offset used.

    The offsets are numbered from the table version the commit is checked against, so two loads at
    once cannot both use them: the one that loses the race renumbers after the winner and commits again.
    """
    snapshot_app = app_id(contract.name, topic, 0)
    if not rows:
        return (lake.transaction_version("landing", contract.name, snapshot_app) or -1) + 1
    while True:
        ensure_tables(lake, contract, ("landing",))
        archive = lake.table("landing", contract.name)
        assert archive is not None
        first = (archive.transaction_version(snapshot_app) or -1) + 1
        records = [
            LandingRecord(
                topic, 0, first + i, stamp, key_string(contract, row).encode(), json.dumps(row, sort_keys=True).encode()
            )
            for i, row in enumerate(rows)
        ]
        try:
            lake.append(
                "landing",
                contract.name,
                landing_rows(contract, records, None, datetime.now(UTC), first_hour),
                app_transactions={snapshot_app: first + len(records) - 1},
                read=archive,
            )
            return first
        except LakeCommitConflictError:
            continue


def build_snapshot_asset(contract: Contract, partitions: Partitions = DEFAULT_PARTITIONS):
    assert contract.snapshot_url is not None
    topic = snapshot_topic(contract.name)

    @asset(
        key=asset_key("snapshot", contract),
        description=f"Full export of {contract.name} from {contract.snapshot_url}, kept in landing/{contract.name} "
        f"under `{topic}` and attributed to the hour its download started.",
        **entity_asset_properties(contract, "landing"),
        kinds={"rest", "delta"},
        pool=lake_pool(contract, "landing"),
    )
    def snapshot_asset(context: AssetExecutionContext, config: SnapshotConfig, lake: LakeResource) -> MaterializeResult:
        started = datetime.fromisoformat(config.as_of) if config.as_of else datetime.now(UTC)
        began = time.monotonic()
        rows = download(str(contract.snapshot_url), config.page_size)
        first = _land_numbered(contract, lake, topic, rows, int(started.timestamp() * 1000), partitions.first_hour)
        context.log.info(f"snapshot of {contract.name}: {len(rows)} rows attributed to {started.isoformat()}")
        return MaterializeResult(
            metadata={
                "rows": len(rows),
                "as_of": started.isoformat(),
                "event_hours": MetadataValue.json([hour_key(started)] if rows else []),
                "offsets": MetadataValue.json({f"{topic}[0]": [first, first + len(rows) - 1]}),
                "duration_s": round(time.monotonic() - began, 3),
            }
        )

    return snapshot_asset
