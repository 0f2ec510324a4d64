"""Table upkeep keeps file counts flat: a day of hourly appends compacts to a few files, with the same
rows, the same exactly-once app transactions, and old versions readable within the retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from platform_assets.definitions import build_definitions, platform_resources
from platform_assets.lib.contract import load_contracts
from resources.kafka import KafkaResource
from resources.lake import LakeResource, vacuum

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)
LAYOUT = pa.schema([("_event_hour", pa.timestamp("us", "UTC")), ("offset", pa.int64()), ("value", pa.string())])


def hourly_appends(lake: LakeResource, hours: int) -> None:
    for hour in range(hours):
        rows = [
            {"_event_hour": START + timedelta(hours=hour), "offset": hour * 10 + i, "value": "x"} for i in range(10)
        ]
        lake.append("landing", "things", pa.Table.from_pylist(rows, LAYOUT), app_transactions={"landing:t:0": hour})


def test_compaction_keeps_rows_positions_and_readable_versions(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    hourly_appends(lake, 24)
    before = lake.read("landing", "things").sort_by("offset")
    version_before = lake.version("landing", "things")
    report = lake.maintain("landing", "things", retention_hours=168)
    assert report["files_before"] == 24 and report["files_after"] == 1
    assert report["files_deleted"] == 0, "files of versions younger than the retention stay"
    assert lake.read("landing", "things").sort_by("offset").equals(before)
    assert lake.transaction_version("landing", "things", "landing:t:0") == 23
    table = lake.table("landing", "things")
    assert table is not None
    table.load_as_version(version_before)
    assert table.to_pyarrow_table().num_rows == before.num_rows, "a reader of the old version still finds its files"

    # Another month of appends and daily upkeep: the file count stays flat instead of growing with the days.
    for _ in range(3):
        hourly_appends(lake, 24)
        assert lake.maintain("landing", "things", 168)["files_after"] == 1
    assert lake.maintain("landing", "things", 0)["files_deleted"] > 0


def test_the_maintenance_job_upkeeps_every_table_in_its_writers_pool(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    hourly_appends(lake, 3)
    contracts = load_contracts()
    defs = build_definitions(contracts, platform_resources(KafkaResource(), lake))
    maintenance = defs.resolve_job_def("maintenance_job")
    pools = {node.name: node.definition.pool for node in maintenance.nodes}
    assert pools["maintain_current_tombstones_customers"] == "lake_current_customers"
    assert pools["maintain_quarantine_customers"] == "lake_raw_customers"
    hourly = [{"_event_hour": START, "offset": i, "value": "y"} for i in range(5)]
    for _ in range(4):
        lake.append("raw", "customers", pa.Table.from_pylist(hourly, LAYOUT))
    result = maintenance.execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success
    assert len(lake.table("raw", "customers").file_uris()) == 1
    assert "maintenance_schedule" in {s.name for s in defs.schedules}


def json_like_appends(lake: LakeResource, hours: int, first_hour: int = 0, rows_per_hour: int = 500) -> int:
    """Hourly appends of values that compress as landing's JSON payloads do; returns their bytes on disk."""
    for hour in range(first_hour, first_hour + hours):
        rows = [
            {
                "_event_hour": START + timedelta(hours=hour),
                "offset": hour * rows_per_hour + i,
                "value": f'{{"customer_id": "C{i:06d}", "city": "Porto", "segment": "premium", "version": {hour}}}',
            }
            for i in range(rows_per_hour)
        ]
        lake.append("landing", "things", pa.Table.from_pylist(rows, LAYOUT))
    return table_bytes(lake)


def table_bytes(lake: LakeResource) -> int:
    table = lake.table("landing", "things")
    assert table is not None
    return sum(pa.table(table.get_add_actions(flatten=True)).column("size_bytes").to_pylist())


def file_codecs(lake: LakeResource, layer: str) -> set[str]:
    table = lake.table(layer, "things")
    assert table is not None
    files = [pq.ParquetFile(uri.removeprefix("file://")).metadata for uri in table.file_uris()]
    return {
        f.row_group(g).column(c).compression
        for f in files
        for g in range(f.num_row_groups)
        for c in range(f.num_columns)
    }


def test_compaction_keeps_the_files_compressed(tmp_path):
    """Compacted files were written uncompressed: a month of landing grew from 14 MB to 84 MB on upkeep."""
    lake = LakeResource(root=str(tmp_path / "lake"))
    before = json_like_appends(lake, 24)
    lake.maintain("landing", "things", retention_hours=168)
    assert table_bytes(lake) <= before, f"upkeep grew the table from {before} to {table_bytes(lake)} bytes"
    assert file_codecs(lake, "landing") == {"ZSTD"}


def test_every_write_of_the_lake_is_zstd_compressed(tmp_path):
    """ZSTD at level 1: a 25k-record landing batch of JSON payloads took 0.17 MB against SNAPPY's 0.81 MB,
    written in the same 21 ms and read back in the same 40 ms; the archive is kept for ever."""
    lake = LakeResource(root=str(tmp_path / "lake"))
    json_like_appends(lake, 2)
    rows = pa.Table.from_pylist([{"_event_hour": START, "offset": 1, "value": "y"}], LAYOUT)
    lake.replace_where("raw", "things", rows, "true")  # the table's first write
    lake.replace_where("raw", "things", rows, "offset = 1")
    assert file_codecs(lake, "landing") == file_codecs(lake, "raw") == {"ZSTD"}


def test_daily_upkeep_rewrites_the_new_hours_only(tmp_path):
    """Each upkeep compacts the hours that received files since the last one, not the whole archive again:
    its cost grows with a day's appends (and the late records among them), not with the months of
    landing behind them. Before landing was partitioned by event hour, each upkeep Z-ordered every file."""
    from platform_assets.entity import TABLE_LAYOUTS
    from platform_assets.maintenance import MAINTAINED

    _, partition_column = TABLE_LAYOUTS["landing"]
    lake = LakeResource(root=str(tmp_path / "lake"))
    lake.create_if_missing("landing", "things", LAYOUT, partition_by=[partition_column])
    for _ in range(2):  # each hour landed in two runs
        json_like_appends(lake, 48)
    lake.maintain("landing", "things", 168, MAINTAINED["landing"][1])
    table = lake.table("landing", "things")
    assert table is not None
    compacted = set(table.file_uris())
    assert len(compacted) == 48, "one file per hour"
    json_like_appends(lake, 24, first_hour=48)
    json_like_appends(lake, 1, first_hour=47)  # late records of the last compacted hour
    lake.maintain("landing", "things", 168, MAINTAINED["landing"][1])
    table.update_incremental()
    rewritten = compacted - set(table.file_uris())
    assert len(rewritten) == 1, f"upkeep rewrote {len(rewritten)} of yesterday's {len(compacted)} compacted files"
    assert len(table.file_uris()) == 72


def test_a_vacuum_on_a_local_lake_deletes_exactly_the_files_no_version_needs(tmp_path):
    """The local vacuum unlinks the files itself (delta-rs's deletes cost 0.15 ms each): on a root whose path
    needs percent-encoding in the table's URI, exactly the files the current version does not name leave
    the disk, the rows stay readable, and a second vacuum (its files already gone) names them again."""
    lake = LakeResource(root=str(tmp_path / "lake with spaces é"))
    hourly_appends(lake, 3)
    lake.delete_where("landing", "things", '"offset" in (1, 12)')  # rewrites two hours' files
    lake.replace_where("landing", "things", LAYOUT.empty_table(), f"_event_hour = '{START.isoformat()}'")
    table = lake.table("landing", "things")
    assert table is not None
    expected = table.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)
    assert len(expected) == 3, "the two rewritten files and the emptied hour's"
    rows = lake.read("landing", "things").sort_by("offset")

    assert sorted(vacuum(table, retention_hours=0)) == sorted(expected)

    root = Path(lake.uri("landing", "things"))
    on_disk = {path.relative_to(root).as_posix() for path in root.rglob("*.parquet") if "_delta_log" not in path.parts}
    assert on_disk == set(table.get_add_actions(flatten=True).column("path").to_pylist())
    assert lake.read("landing", "things").sort_by("offset").equals(rows)
    assert rows.num_rows == 19
    assert sorted(vacuum(table, retention_hours=0)) == sorted(expected), "files already gone are named, not refused"
