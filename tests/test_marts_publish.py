"""Publishing a run's build of a mart: one Delta commit that replaces exactly the run's days (real Delta
tables through delta-rs; dbt and Spark are covered by test_quality_gates and test_end_to_end)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from deltalake.exceptions import DeltaError

from platform_assets.marts import publish_mart, remove_build, spark_connect_address
from resources.lake import IncompatibleSchemaError

pytestmark = pytest.mark.unit

DAILY = {"name": "kpis", "alias": "kpis", "config": {"partition_by": ["day"], "meta": {"window_column": "day"}}}
HOURLY = {"name": "hourly", "alias": "hourly", "config": {"partition_by": None, "meta": {"window_column": "hour"}}}
JAN = [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 6)]


def build(lake, run: str, model: dict, data: pa.Table) -> str:
    """A run's build as Sail writes it: partition columns last, NOT NULL inferred."""
    entity = f"_builds/{run}"
    write_deltalake(lake.uri("marts", f"{entity}/{model['name']}"), data, mode="overwrite")
    return entity


def daily(days: list[int], active: int) -> pa.Table:
    schema = pa.schema([pa.field("active", pa.int64(), nullable=False), pa.field("day", pa.date32(), nullable=False)])
    return pa.table({"active": [active] * len(days), "day": [date(2026, 1, d) for d in days]}, schema=schema)


def test_a_publish_replaces_exactly_the_runs_days_in_one_commit(lake):
    first = build(lake, "r1", DAILY, daily([1, 2, 3], active=10))
    publish_mart(lake, first, DAILY, JAN[0], JAN[3])
    table = lake.table("marts", "kpis")
    assert table.metadata().partition_columns == ["day"]
    # The model's column order (day first), every column nullable as in the rest of the lake.
    assert [(f.name, f.nullable) for f in lake.read("marts", "kpis").schema] == [("day", True), ("active", True)]
    version_before = table.version()

    # Days 2..4 again: day 3 lost all its rows (it must be emptied), day 4 is new, day 1 is not touched.
    second = build(lake, "r2", DAILY, daily([2, 4], active=20))
    publish_mart(lake, second, DAILY, JAN[1], JAN[4])
    assert lake.version("marts", "kpis") == version_before + 1
    rows = sorted((r["day"].day, r["active"]) for r in lake.read("marts", "kpis").to_pylist())
    assert rows == [(1, 10), (2, 20), (4, 20)]


def test_a_build_with_rows_outside_the_runs_days_is_refused(lake):
    first = build(lake, "r1", DAILY, daily([1], active=10))
    publish_mart(lake, first, DAILY, JAN[0], JAN[1])
    version = lake.version("marts", "kpis")
    stray = build(lake, "r2", DAILY, daily([2, 3], active=20))
    with pytest.raises(DeltaError, match="rows failed validation check"):
        publish_mart(lake, stray, DAILY, JAN[1], JAN[2])
    assert lake.version("marts", "kpis") == version


def test_a_column_whose_type_the_model_changed_is_refused_not_cast_into_the_old_type(lake):
    """A spend published as a double, then built as an exact decimal (card_spend_hourly before and after
    amounts became decimal(12, 2)): cast back into the stored double, it would be a float again."""

    def spend(day: int, amount: str, type_: pa.DataType) -> pa.Table:
        value = float(amount) if pa.types.is_floating(type_) else Decimal(amount)
        return pa.table({"day": [date(2026, 1, day)], "spend": pa.array([value], type_)})

    publish_mart(lake, build(lake, "r1", DAILY, spend(1, "0.30", pa.float64())), DAILY, JAN[0], JAN[1])
    version = lake.version("marts", "kpis")
    exact = build(lake, "r2", DAILY, spend(2, "0.30", pa.decimal128(22, 2)))
    with pytest.raises(IncompatibleSchemaError) as refused:
        publish_mart(lake, exact, DAILY, JAN[1], JAN[2])
    message = str(refused.value)
    assert "mart `kpis` was not published" in message and "`spend` double -> decimal128(22, 2)" in message
    assert f"delete the published mart {lake.uri('marts', 'kpis')}" in message and "daily_job" in message
    assert lake.version("marts", "kpis") == version

    # Published anew, as the message says: the decimal is kept exactly.
    remove_build(lake.uri("marts", "kpis"))
    publish_mart(lake, exact, DAILY, JAN[1], JAN[2])
    assert lake.read("marts", "kpis").to_pylist() == [{"day": date(2026, 1, 2), "spend": Decimal("0.30")}]


def test_a_column_added_to_a_model_is_added_to_the_published_mart(lake):
    publish_mart(lake, build(lake, "r1", DAILY, daily([1], active=10)), DAILY, JAN[0], JAN[1])
    wider = daily([2], active=20).append_column("customers", pa.array([7], pa.int64()))
    publish_mart(lake, build(lake, "r2", DAILY, wider), DAILY, JAN[1], JAN[2])
    rows = sorted((r["day"].day, r["active"], r["customers"]) for r in lake.read("marts", "kpis").to_pylist())
    assert rows == [(1, 10, None), (2, 20, 7)]


def test_an_unpartitioned_mart_is_replaced_by_its_hours(lake):
    def hours(day: int, count: int) -> pa.Table:
        stamps = [datetime(2026, 1, day, h, tzinfo=UTC) for h in range(24)]
        return pa.table({"hour": pa.array(stamps, pa.timestamp("us", tz="UTC")), "transactions": [count] * 24})

    publish_mart(lake, build(lake, "r1", HOURLY, hours(1, 1)), HOURLY, JAN[0], JAN[1])
    publish_mart(lake, build(lake, "r2", HOURLY, hours(2, 2)), HOURLY, JAN[1], JAN[2])
    publish_mart(lake, build(lake, "r3", HOURLY, hours(2, 3)), HOURLY, JAN[1], JAN[2])
    counts = sorted({(r["hour"].day, r["transactions"]) for r in lake.read("marts", "hourly").to_pylist()})
    assert counts == [(1, 1), (2, 3)]
    assert lake.read("marts", "hourly").num_rows == 48
    assert lake.table("marts", "hourly").metadata().partition_columns == []


def test_a_runs_build_is_removed_and_removing_a_missing_one_is_no_error(lake):
    entity = build(lake, "r1", DAILY, daily([1], active=1))
    remove_build(lake.uri("marts", entity))
    assert lake.table("marts", f"{entity}/kpis") is None
    remove_build(lake.uri("marts", entity))


def test_dbt_reaches_the_spark_connect_server_by_host_and_port():
    assert spark_connect_address("sc://127.0.0.1:40123") == ("127.0.0.1", 40123)
    assert spark_connect_address("sc://spark-connect.spark.svc") == ("spark-connect.spark.svc", 15002)
    with pytest.raises(ValueError, match=r"dbt-sail takes `sc://host:port` only.*SPARK_REMOTE"):
        spark_connect_address("sc://spark:15002/;use_ssl=true;token=abc")
