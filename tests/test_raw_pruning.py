"""Raw reads one hour of the landing archive without touching the files of other hours (Delta file
statistics on `_event_hour` prune them), so its cost does not grow with the archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from platform_assets.lib.archive import DECODED_LANDING_COLUMNS, landing_records
from platform_assets.lib.tables import LANDING_SCHEMA
from platform_assets.raw import read_hours

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 30


def test_raw_reads_an_hour_of_landing_from_that_hours_files_alone(lake):
    for hour in range(HOURS):  # one landing commit per hour, as the landing schedule makes them
        moment = START + timedelta(hours=hour)
        rows = [
            {"topic": "t", "partition": 0, "offset": hour * 10 + i, "timestamp": moment, "_event_hour": moment}
            for i in range(10)
        ]
        lake.append("landing", "things", pa.Table.from_pylist(rows, LANDING_SCHEMA))
    table = lake.table("landing", "things")
    assert table is not None
    hour = START + timedelta(hours=17)
    [kept] = [path for path in table.file_uris() if _hours_of(path) == {hour}]
    for path in table.file_uris():
        if path != kept:
            Path(path).unlink()  # a read that touched another hour's file would now fail

    records = landing_records(read_hours(lake, "landing", "things", hour, hour + timedelta(hours=1), LANDING_SCHEMA))

    assert sorted(r.offset for r in records) == list(range(170, 180))


def test_raw_reads_landing_without_the_headers_no_decode_looks_at(lake):
    """`DECODED_LANDING_COLUMNS` reach the Parquet read: decoding a raw hour's header lists back into
    pairs cost 1.2 s of a 714k-record hour, and a read given a schema still returned every column."""
    headers = [{"key": "trace", "value": b"t-1"}]
    rows = [
        {"topic": "t", "partition": 0, "offset": i, "timestamp": START, "_event_hour": START, "headers": headers}
        for i in range(3)
    ]
    lake.append("landing", "things", pa.Table.from_pylist(rows, LANDING_SCHEMA))
    hour_after = START + timedelta(hours=1)

    landed = read_hours(lake, "landing", "things", START, hour_after, LANDING_SCHEMA, DECODED_LANDING_COLUMNS)
    not_landed = read_hours(lake, "landing", "nothing", START, hour_after, LANDING_SCHEMA, DECODED_LANDING_COLUMNS)

    assert landed.column_names == not_landed.column_names == DECODED_LANDING_COLUMNS
    assert "headers" not in DECODED_LANDING_COLUMNS
    assert [(r.offset, r.headers) for r in landing_records(landed)] == [(0, ()), (1, ()), (2, ())]


def _hours_of(path: str) -> set[datetime]:
    import pyarrow.parquet as pq

    return set(pq.read_table(path, columns=["_event_hour"]).column("_event_hour").to_pylist())


def test_a_raw_run_that_replaces_late_hours_rewrites_their_files_alone(lake):
    from platform_assets.entity import ensure_tables
    from platform_assets.lib.contract import parse_contract
    from platform_assets.lib.tables import hour_window_predicate, raw_schema
    from platform_assets.maintenance import DEFAULT_RETENTION_HOURS, MAINTAINED

    contract = parse_contract(
        {
            "name": "things",
            "source": {"format": "json", "topic": "things"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
        }
    )
    ensure_tables(lake, contract, ("raw",))

    def raw_run(first: int, last: int, offset: int) -> None:
        """What the raw asset writes for hours first..last: every hour's rows, replacing the window."""
        hours = [START + timedelta(hours=h) for h in range(first, last + 1)]
        rows = [{"id": f"k{i}", "v": offset + i, "_event_hour": hour, "ts": hour} for hour in hours for i in range(5)]
        window = hour_window_predicate("_event_hour", hours[0], hours[-1] + timedelta(hours=1))
        lake.replace_where("raw", "things", pa.Table.from_pylist(rows, raw_schema(contract)), window)

    for hour in range(HOURS):  # every hour a run, and a late record then re-runs the hour before as well
        raw_run(max(0, hour - 1), hour, offset=hour * 100)
    table = lake.table("raw", "things")
    assert table is not None
    files = set(table.file_uris())
    assert len(files) == HOURS, "one file per hour: late hours did not merge files across hours"

    raw_run(10, 11, offset=10_000)
    table.update_incremental()
    [metrics] = [entry["operationMetrics"] for entry in table.history(1)]
    assert metrics["num_removed_files"] == 2, "only the two replaced hours' files are rewritten"
    assert len(files - set(table.file_uris())) == 2

    lake.maintain("raw", "things", DEFAULT_RETENTION_HOURS, MAINTAINED["raw"][1])
    assert lake.read("raw", "things").num_rows == HOURS * 5


def test_upkeep_keeps_row_groups_an_hour_read_can_skip(lake):
    import pyarrow.parquet as pq

    from platform_assets.maintenance import DEFAULT_RETENTION_HOURS, MAINTAINED
    from resources.lake import COMPACTED_ROW_GROUP_ROWS

    per_hour = COMPACTED_ROW_GROUP_ROWS // 4
    for hour in range(12):
        moment = START + timedelta(hours=hour)
        rows = {"topic": ["t"] * per_hour, "offset": range(hour * per_hour, (hour + 1) * per_hour)}
        columns = {**rows, "timestamp": [moment] * per_hour, "_event_hour": [moment] * per_hour}
        lake.append(
            "landing", "things", pa.Table.from_pydict(columns, pa.schema([LANDING_SCHEMA.field(c) for c in columns]))
        )
    lake.maintain("landing", "things", DEFAULT_RETENTION_HOURS, MAINTAINED["landing"][1])
    table = lake.table("landing", "things")
    assert table is not None
    [compacted] = table.file_uris()
    metadata = pq.ParquetFile(compacted).metadata
    hour_column = metadata.schema.names.index("_event_hour")
    spans = [
        (group.column(hour_column).statistics.min, group.column(hour_column).statistics.max)
        for group in (metadata.row_group(i) for i in range(metadata.num_row_groups))
    ]
    assert len(spans) >= 3, "one row group per file would make a read of one hour read them all"
    assert all(last - first <= timedelta(hours=4) for first, last in spans), "each row group holds a few hours"
