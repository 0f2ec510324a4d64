"""The change-data merges of `current` and `history`, as functions of a SparkSession and plain arguments.

No Dagster here: the same functions run on embedded Sail and on Spark Connect in a cluster. The rules
mirror `platform_assets.lib.ordering`, the plain-Python reference that tests compare them with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F


@dataclass(frozen=True)
class MergeSpec:
    """What the merge needs to know of an entity: its key, its change order and its stored columns."""

    key: tuple[str, ...]
    order: tuple[str, ...]
    columns: tuple[str, ...]


def at_least(left: str, right: str, columns: tuple[str, ...]) -> str:
    """SQL for `left >= right` in the lexicographic order of `columns` (no struct comparison needed)."""
    head, *rest = columns
    if not rest:
        return f"{left}.{head} >= {right}.{head}"
    return (
        f"({left}.{head} > {right}.{head} OR ({left}.{head} = {right}.{head} AND {at_least(left, right, tuple(rest))}))"
    )


def newest_per_key(changes: DataFrame, spec: MergeSpec) -> DataFrame:
    window = Window.partitionBy(*spec.key).orderBy(*[F.col(c).desc() for c in spec.order])
    return changes.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def as_state(changes: DataFrame, spec: MergeSpec) -> DataFrame:
    """Raw changes as rows of state: the stored columns plus the tombstone flag."""
    return changes.withColumn("_deleted", F.col("_op") == F.lit("delete")).select(*spec.columns, "_deleted")


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def changes_between(spark: SparkSession, raw_uri: str, start: datetime, end: datetime) -> DataFrame:
    return (
        spark.read.format("delta")
        .load(raw_uri)
        .where(F.col("_event_hour") >= F.lit(_timestamp(start)).cast("timestamp"))
        .where(F.col("_event_hour") < F.lit(_timestamp(end)).cast("timestamp"))
    )


def merge_into_current(spark: SparkSession, changes: DataFrame, current_uri: str, spec: MergeSpec) -> dict[str, Any]:
    """Apply changes to `current`: per key the newest change wins if it is at least as new as the stored one.

    The `>=` guard makes a re-application of the same changes rewrite exactly the rows whose newest
    change is among them, so a backfill after a logic fix repairs those rows and touches no others.
    """
    source = as_state(newest_per_key(changes, spec), spec)
    view = "platform_current_changes"
    source.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
    columns = (*spec.columns, "_deleted")
    updates = ", ".join(f"t.{c} = s.{c}" for c in columns)
    inserted = ", ".join(columns)
    values = ", ".join(f"s.{c}" for c in columns)
    spark.sql(
        f"""
        MERGE INTO delta.`{current_uri}` AS t
        USING {view} AS s
        ON {on}
        WHEN MATCHED AND {at_least("s", "t", spec.order)} THEN UPDATE SET {updates}
        WHEN NOT MATCHED THEN INSERT ({inserted}) VALUES ({values})
        """
    ).collect()
    return {"changes_in": source.count()}


def since_latest_snapshot(changes: DataFrame, snapshot_topic: str) -> DataFrame:
    """The latest full snapshot plus every change published after its download started.

    Older changes are left out on purpose: the snapshot already holds their outcome, and a key deleted
    before the snapshot must not come back through an older create. Without a snapshot: every change.
    """
    latest = changes.where(F.col("_topic") == snapshot_topic).agg(F.max("_kafka_timestamp").alias("_snapshot_at"))
    from_snapshot = (F.col("_topic") == snapshot_topic) & (F.col("_kafka_timestamp") == F.col("_snapshot_at"))
    later = (F.col("_topic") != snapshot_topic) & (F.col("_kafka_timestamp") >= F.col("_snapshot_at"))
    return changes.crossJoin(latest).where(F.col("_snapshot_at").isNull() | from_snapshot | later).drop("_snapshot_at")


def rebuild_current(spark: SparkSession, changes: DataFrame, current_uri: str, spec: MergeSpec) -> dict[str, Any]:
    """Replace `current` by the newest state per key over `changes` (a full refresh from the archive).

    A plain overwrite keeps the table's declared (nullable) schema and is one atomic commit.
    """
    state = as_state(newest_per_key(changes, spec), spec)
    state.write.format("delta").mode("overwrite").save(current_uri)
    return {"changes_in": state.count()}


def _day_state(spark: SparkSession, previous: DataFrame, raw_uri: str, day: date, spec: MergeSpec) -> DataFrame:
    start = datetime(day.year, day.month, day.day)
    todays = as_state(changes_between(spark, raw_uri, start, start + timedelta(days=1)), spec)
    return newest_per_key(previous.unionByName(todays), spec)


def history_days(
    spark: SparkSession, history_uri: str, raw_uri: str, first: date, last: date, spec: MergeSpec
) -> dict[str, int]:
    """Recompute history days first..last, two days per atomic commit (Delta replaceWhere).

    Day D is day D-1's state (tombstones included, so a late older update cannot revive a deleted
    key) plus the changes of D, newest per key. Only day first-1 is read, so the cost of a run does
    not grow with the length of the history.
    """
    rows: dict[str, int] = {}
    previous_day = first - timedelta(days=1)
    day = first
    while day <= last:
        chunk_end = min(day + timedelta(days=1), last)
        previous: DataFrame = (
            spark.read.format("delta")
            .load(history_uri)
            .where(F.col("snapshot_date") == F.lit(previous_day.isoformat()).cast("date"))
            .drop("snapshot_date")
        )
        states = []
        current_day = day
        while current_day <= chunk_end:
            previous = _day_state(spark, previous, raw_uri, current_day, spec)
            states.append(previous.select(F.lit(current_day.isoformat()).cast("date").alias("snapshot_date"), "*"))
            current_day += timedelta(days=1)
        frame = states[0] if len(states) == 1 else states[0].unionByName(states[1])
        predicate = f"snapshot_date >= '{day.isoformat()}' AND snapshot_date <= '{chunk_end.isoformat()}'"
        frame.write.format("delta").mode("overwrite").option("replaceWhere", predicate).save(history_uri)
        for state_day in range((chunk_end - day).days + 1):
            label = (day + timedelta(days=state_day)).isoformat()
            rows[label] = (
                spark.read.format("delta")
                .load(history_uri)
                .where(F.col("snapshot_date") == F.lit(label).cast("date"))
                .where(~F.col("_deleted"))
                .count()
            )
        previous_day = chunk_end
        day = chunk_end + timedelta(days=1)
    return rows


def duplicate_keys(spark: SparkSession, uri: str, key: tuple[str, ...], limit: int = 20) -> list[tuple]:
    """Keys that occur more than once in a table (the examples a failing uniqueness check shows)."""
    grouped = spark.read.format("delta").load(uri).groupBy(*key).count().where("count > 1").limit(limit)
    return [tuple(row[k] for k in key) for row in grouped.collect()]


def live_and_tombstones(spark: SparkSession, uri: str) -> tuple[int, int]:
    row = (
        spark.read.format("delta")
        .load(uri)
        .agg(
            F.sum(F.when(F.col("_deleted"), 0).otherwise(1)).alias("live"),
            F.sum(F.col("_deleted").cast("int")).alias("dead"),
        )
        .collect()[0]
    )
    return int(row["live"] or 0), int(row["dead"] or 0)
