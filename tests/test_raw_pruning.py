"""Raw reads one hour of the landing archive without touching the files of other hours (Delta file
statistics on `_event_hour` prune them), so its cost does not grow with the archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from platform_assets.lib.tables import LANDING_SCHEMA
from platform_assets.raw import landed_records

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

    records = landed_records(lake, "things", hour, hour + timedelta(hours=1))

    assert sorted(r.offset for r in records) == list(range(170, 180))


def _hours_of(path: str) -> set[datetime]:
    import pyarrow.parquet as pq

    return set(pq.read_table(path, columns=["_event_hour"]).column("_event_hour").to_pylist())
