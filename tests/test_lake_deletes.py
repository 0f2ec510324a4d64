"""`LakeResource.delete_where` removes exactly the rows its predicate selects, and its overwrite names only
the partitions that hold them (a month of daily history was read twice to delete one person's day)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from resources.lake import LakeResource

pytestmark = pytest.mark.unit

DAILY = pa.schema([("snapshot_date", pa.date32()), ("id", pa.string()), ("v", pa.int64())])
HOURLY = pa.schema([("_event_hour", pa.timestamp("us", "UTC")), ("id", pa.string()), ("v", pa.int64())])
BY_NAME = pa.schema([("source", pa.string()), ("id", pa.string()), ("v", pa.int64())])

CASES = [
    ("history", DAILY, "snapshot_date", [date(2026, 1, day) for day in range(1, 6)]),
    ("raw", HOURLY, "_event_hour", [datetime(2026, 1, 1, hour, tzinfo=UTC) for hour in range(5)]),
    ("current", BY_NAME, "source", ["a", "b's", "c d", "e", "f"]),
]


@pytest.mark.parametrize(("layer", "schema", "partition", "values"), CASES)
def test_a_delete_removes_its_rows_and_rewrites_only_their_partitions(tmp_path, layer, schema, partition, values):
    lake = LakeResource(root=str(tmp_path / "lake"))
    # k0 in every partition, k1 in the second and the fifth only, and a row without an id beside it
    # (for which the predicate is null, not true: it stays).
    rows = [{partition: value, "id": "k0", "v": n} for n, value in enumerate(values)]
    rows += [{partition: values[n], "id": "k1", "v": 10 + n} for n in (1, 4)]
    rows += [{partition: values[1], "id": None, "v": 20}]
    write_deltalake(lake.uri(layer, "things"), pa.Table.from_pylist(rows, schema), partition_by=[partition])
    files_before = set(table_of(lake, layer).file_uris())

    assert lake.delete_where(layer, "things", "id = 'k1'") == 2

    assert sorted(row["v"] for row in lake.read(layer, "things").to_pylist()) == [0, 1, 2, 3, 4, 20]
    assert len(files_before - set(table_of(lake, layer).file_uris())) == 2, "the two partitions holding k1"
    [commit] = table_of(lake, layer).history(1)
    written = commit["operationParameters"]["predicate"]
    assert written.count(partition) == 2 and "k1" in written, f"the overwrite names k1's partitions: {written}"
    for added in set(table_of(lake, layer).file_uris()) - files_before:
        assert pq.read_schema(added.removeprefix("file://")).field("id").type == pa.string(), "not string_view"
    assert lake.delete_where(layer, "things", "id = 'k1'") == 0
    assert lake.delete_where(layer, "things", "id = 'k0'") == 5
    assert [row["v"] for row in lake.read(layer, "things").to_pylist()] == [20]


def table_of(lake: LakeResource, layer: str) -> DeltaTable:
    table = lake.table(layer, "things")
    assert table is not None
    return table
