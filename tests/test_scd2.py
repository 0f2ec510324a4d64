"""SCD2 on Spark against its plain-Python reference (`platform_assets.lib.scd2`): generated streams with
late, out-of-order, duplicate and deleted changes (and truncates), applied hour by hour in any order and
any number of times, give the reference's rows; and the rows survive a run interrupted between its two
commits. On Sail in local and in local-cluster mode (two workers), like the merge properties."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
import test_merge_properties
from change_streams import START, THINGS, TRUNCATABLE, raw_rows, stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platform_assets.entity import merge_spec
from platform_assets.lib.contract import Contract
from platform_assets.lib.scd2 import scd2_rows
from platform_assets.lib.tables import current_schema, raw_schema, scd2_schema
from spark.cdc import changes_between
from spark.scd2 import merge_into_scd2

pytestmark = pytest.mark.spark

# Sail in local and in local-cluster mode (two workers), the fixture the merge properties run on.
spark = test_merge_properties.spark

HOURS = 4


def create_tables(lake, contract: Contract, rows: list[dict[str, Any]]) -> None:
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(contract)))
    lake.create_if_missing("scd2", "things", scd2_schema(contract))
    lake.create_if_missing("scd2_tombstones", "things", current_schema(contract))


def apply_hours(spark, lake, contract: Contract, hours: list[int]) -> None:
    uris = lake.uri("scd2", "things"), lake.uri("scd2_tombstones", "things")
    for hour in hours:
        start = START + timedelta(hours=hour)
        changes = changes_between(spark, lake.uri("raw", "things"), start, start + timedelta(hours=1))
        merge_into_scd2(spark, changes, *uris, merge_spec(contract))


def as_set(contract: Contract, rows: list[dict[str, Any]]) -> list[tuple]:
    columns = [f.name for f in scd2_schema(contract)]
    return sorted((tuple(row[c] for c in columns) for row in rows), key=repr)


@pytest.mark.parametrize("contract", [THINGS, TRUNCATABLE], ids=["row_sequence", "source_position"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scd2_matches_reference_in_any_hour_order(spark, tmp_path_factory, contract, data):
    from resources.lake import LakeResource

    rows = data.draw(stream(contract, HOURS, max_size=20))
    order = data.draw(st.permutations(list(range(HOURS))))
    repeats = data.draw(st.lists(st.integers(0, HOURS - 1), max_size=2))
    lake = LakeResource(root=str(tmp_path_factory.mktemp("lake")))
    create_tables(lake, contract, rows)

    apply_hours(spark, lake, contract, list(order) + list(repeats))

    expected = as_set(contract, scd2_rows(contract, rows))
    stored = as_set(contract, lake.read("scd2", "things").to_pylist())
    assert stored == expected
    apply_hours(spark, lake, contract, list(range(HOURS)))  # re-applying everything changes nothing
    assert as_set(contract, lake.read("scd2", "things").to_pylist()) == expected


def test_a_rerun_repairs_a_run_interrupted_between_its_two_commits(spark, lake):
    """Hour 2 deletes key 1 and updates key 2; its tombstones were committed, its scd2 rows were not."""
    rows = raw_rows(
        THINGS,
        [
            (1, "create", 1, 10, None, "red"),
            (2, "create", 1, 20, None, "red"),
            (1, "update", 2, 70, None, "green"),
            (1, "delete", 3, 130, None, "red"),
            (2, "update", 2, 140, None, "blue"),
        ],
        [],
    )
    create_tables(lake, THINGS, rows)
    apply_hours(spark, lake, THINGS, [0, 1])
    before_hour_2 = lake.table("scd2", "things")
    apply_hours(spark, lake, THINGS, [2])
    expected = as_set(THINGS, scd2_rows(THINGS, rows))
    assert as_set(THINGS, lake.read("scd2", "things").to_pylist()) == expected
    lake.publish("scd2", "things", before_hour_2)  # scd2 as the interrupted run left it
    assert as_set(THINGS, lake.read("scd2", "things").to_pylist()) != expected
    assert lake.read("scd2_tombstones", "things").num_rows == 1

    apply_hours(spark, lake, THINGS, [2])
    assert as_set(THINGS, lake.read("scd2", "things").to_pylist()) == expected
    assert [r["v"] for r in lake.read("scd2_tombstones", "things").to_pylist()] == [3]
