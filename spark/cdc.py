"""The change-data merges of `current` and `history`, as functions of a SparkSession and plain arguments.

No Dagster here: the same functions run on embedded Sail and on Spark Connect in a cluster. The rules
mirror `platform_assets.lib.ordering`, the plain-Python reference that tests compare them with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

# A Debezium truncate in raw (`platform_assets.lib.records.TRUNCATE`; spark/ imports no platform code).
TRUNCATE = "truncate"


@dataclass(frozen=True)
class MergeSpec:
    """What the merge needs to know of an entity: its key, its change order and its stored columns."""

    key: tuple[str, ...]
    order: tuple[str, ...]
    columns: tuple[str, ...]
    event_time: str = ""
    tombstone_retention_days: int | None = None
    # Ordered by the source position alone, so raw may hold truncates (rows without a key).
    truncatable: bool = False

    def expired_at(self, moment: datetime | None) -> str | None:
        """SQL true for a tombstone past its retention at `moment` (None when nothing expires)."""
        if self.tombstone_retention_days is None or moment is None:
            return None
        cutoff = moment - timedelta(days=self.tombstone_retention_days)
        return f"{self.event_time} < CAST('{_timestamp(cutoff)}' AS TIMESTAMP)"


def at_least(left: str, right: str, columns: tuple[str, ...]) -> str:
    """SQL for `left >= right` in the lexicographic order of `columns` (no struct comparison needed),
    nulls first as `newest_per_key` sorts them (an envelope position can be null)."""
    head, *rest = columns
    lhs, rhs = f"{left}.{head}", f"{right}.{head}"
    if not rest:
        return f"({lhs} >= {rhs} OR {rhs} IS NULL)"
    greater = f"{lhs} > {rhs} OR ({lhs} IS NOT NULL AND {rhs} IS NULL)"
    return f"({greater} OR ({lhs} <=> {rhs} AND {at_least(left, right, tuple(rest))}))"


def same_key(spec: MergeSpec) -> str:
    """SQL joining a change `s` to the stored row `t` of its key."""
    return " AND ".join(f"t.{k} = s.{k}" for k in spec.key)


class CheckpointPathMissingError(RuntimeError):
    """The Spark Connect server has nowhere to keep checkpoints (a Sail server without a checkpoint path)."""


def checkpointed(frame: DataFrame) -> DataFrame:
    """`frame` computed once and kept (Spark's local checkpoint), for a step that uses it more than once:
    Sail plans a MERGE whose source is a plan of windows and joins so that it runs that plan again and
    again, and a DataFrame used twice is computed twice.

    pyspark 4.2's Connect client binds the checkpoint to the thread's active session, which belongs to
    another server when a process talks to two (the tests' local-cluster server beside the embedded
    one): the result is bound back to `frame`'s session, which also releases it when it is dropped.
    """
    try:
        result = frame.localCheckpoint()
    except Exception as error:
        if "checkpoint" not in str(error) or "path is not configured" not in str(error):
            raise
        raise CheckpointPathMissingError(
            "the Spark Connect server has no checkpoint path, and the merges checkpoint what they use twice: "
            "start the Sail server with SAIL_EXECUTION__CHECKPOINT__PATH set to an object-store path the server "
            "can write (for example abfss://<container>@<account>.dfs.core.windows.net/_checkpoints, with a "
            "lifecycle rule deleting files older than a day); the embedded server gets one by itself"
        ) from error
    session = frame.sparkSession
    if result.sparkSession is not session:
        result._session = session
        result._plan._spark_session = session  # type: ignore[attr-defined]
    return result


def newest_per_key(changes: DataFrame, spec: MergeSpec) -> DataFrame:
    window = Window.partitionBy(*spec.key).orderBy(*[F.col(c).desc() for c in spec.order])
    return changes.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def as_state(changes: DataFrame, spec: MergeSpec) -> DataFrame:
    """Raw changes as rows of state: the stored columns plus the tombstone flag."""
    deleted = F.col("_op").isin("delete", TRUNCATE)
    return changes.withColumn("_deleted", deleted).select(*spec.columns, "_deleted")


def truncated(spark: SparkSession, state: DataFrame, spec: MergeSpec) -> DataFrame:
    """The newest state per key after the newest truncate in it (the row with a null key, which
    `newest_per_key` keeps once): every key whose state is older becomes a tombstone at the
    truncate's position. The truncate row stays, as a tombstone that also beats older changes of keys
    not seen yet."""
    view = f"platform_truncated_{uuid.uuid4().hex}"  # unique: history chains several lazily
    state.createOrReplaceTempView(view)
    first = spec.key[0]
    older = f"(t._offset IS NOT NULL AND NOT {at_least('s', 't', spec.order)})"
    columns = ", ".join(
        f"s.{c}" if c in spec.key else f"CASE WHEN {older} THEN t.{c} ELSE s.{c} END AS {c}" for c in spec.columns
    )
    return spark.sql(
        f"""
        SELECT {columns}, (s._deleted OR {older}) AS _deleted
        FROM (SELECT * FROM {view} WHERE {first} IS NOT NULL) AS s
        LEFT JOIN (SELECT * FROM {view} WHERE {first} IS NULL) AS t ON TRUE
        UNION ALL
        SELECT * FROM {view} WHERE {first} IS NULL
        """
    )


def stored_state(live: DataFrame, tombstones: DataFrame) -> DataFrame:
    """Live rows and tombstones, kept in two tables, as one state with the tombstone flag."""
    return live.withColumn("_deleted", F.lit(False)).unionByName(tombstones.withColumn("_deleted", F.lit(True)))


def live_rows(state: DataFrame) -> DataFrame:
    return state.where(~F.col("_deleted")).drop("_deleted")


def tombstone_rows(state: DataFrame) -> DataFrame:
    return state.where(F.col("_deleted")).drop("_deleted")


def conform(spark: SparkSession, frame: DataFrame, uri: str) -> DataFrame:
    """`frame` in the stored table's layout: columns the table kept from an older contract read null (Sail,
    like Delta without schema evolution, refuses a write that lacks a column of the table)."""
    present = set(frame.columns)
    return frame.select(
        *(
            F.col(f.name).cast(f.dataType) if f.name in present else F.lit(None).cast(f.dataType).alias(f.name)
            for f in spark.read.format("delta").load(uri).schema.fields
        )
    )


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def changes_between(spark: SparkSession, raw_uri: str, start: datetime, end: datetime) -> DataFrame:
    return (
        spark.read.format("delta")
        .load(raw_uri)
        .where(F.col("_event_hour") >= F.lit(_timestamp(start)).cast("timestamp"))
        .where(F.col("_event_hour") < F.lit(_timestamp(end)).cast("timestamp"))
    )


def merge_into_current(
    spark: SparkSession,
    changes: DataFrame,
    current_uri: str,
    tombstones_uri: str,
    spec: MergeSpec,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Apply changes: per key the newest change wins if it is at least as new as the stored one.

    Live rows are in `current`, tombstones in a table beside it, so readers of `current` see live rows
    only while a late older update still meets the delete that beat it. Changes older than their key's
    tombstone are dropped first (a join with the tombstones, which are few beside `current`); the
    rewrite of `current` then decides the rest (`_rewrite_current`), and the tombstones follow from
    what it left: a delete won if `current` no longer holds its key, a surviving live change clears
    its key's tombstone. Each step gives the same answer on a rerun, so a crash between the two
    commits is repaired by running the partition again. The `>=` guard makes a backfill after a logic
    fix rewrite exactly the keys whose newest change it re-applies. With a tombstone retention,
    tombstones of deletes older than the retention before `as_of` (the end of the partition) are
    dropped last.
    """
    stored_tombstones = spark.read.format("delta").load(tombstones_uri)
    source = newest_per_key(as_state(changes, spec), spec)
    if spec.truncatable:
        if changes.where(F.col(spec.key[0]).isNull()).limit(1).count():
            return _merge_truncate(spark, changes, current_uri, tombstones_uri, spec, as_of)
        # The stored truncate (the tombstone without a key) beats older changes of every key.
        stored_truncate = stored_tombstones.where(F.col(spec.key[0]).isNull()).withColumn("_deleted", F.lit(True))
        source = truncated(spark, newest_per_key(source.unionByName(stored_truncate), spec), spec)
    source.createOrReplaceTempView("platform_current_changes")
    stored_tombstones.createOrReplaceTempView("platform_current_tombstones")
    on = same_key(spec)
    newer = at_least("s", "t", spec.order)
    # Every change with whether its key's tombstone beat it, computed once: counted for the run's
    # metadata, and its unbeaten rows read by the rewrite, the winning deletes and the tombstones (a
    # checkpoint of the window and another of the join cost a second pass over the changes).
    judged = checkpointed(
        spark.sql(
            f"""
            SELECT s.*, COALESCE(t.{spec.key[0]} IS NULL OR {newer}, FALSE) AS _unbeaten
            FROM platform_current_changes AS s LEFT JOIN platform_current_tombstones AS t ON {on}
            """
        )
    )
    unbeaten = judged.where(F.col("_unbeaten")).drop("_unbeaten")
    unbeaten.createOrReplaceTempView("platform_current_unbeaten")
    _rewrite_current(spark, current_uri, "platform_current_unbeaten", spec)
    still_live = spark.read.format("delta").load(current_uri).select(*spec.key)
    winning_deletes = unbeaten.where(F.col("_deleted")).join(still_live, on=list(spec.key), how="left_anti")
    unbeaten.where(~F.col("_deleted")).unionByName(winning_deletes).createOrReplaceTempView("platform_current_decided")
    _rewrite_tombstones(spark, tombstones_uri, "platform_current_decided", spec)
    return {"changes_in": judged.count(), "tombstones_expired": _expire_tombstones(spark, tombstones_uri, spec, as_of)}


def _rewrite_current(spark: SparkSession, current_uri: str, unbeaten_view: str, spec: MergeSpec) -> None:
    """`current` rewritten whole, in one overwrite commit: per key the stored row, or the change at least
    as new as it (a delete leaves no row). A rewrite and not a MERGE: an hour's changes touch keys
    spread over every file, so a MERGE rewrote every file too, and Sail's MERGE cost two to three times
    this rewrite (into 5M rows: 2.5-3.0 s against 1.1-1.2 s for 1k changes, 3.8-4.2 s against 1.9-2.1 s
    for 100k; the same rows)."""
    stored = f"platform_current_{uuid.uuid4().hex}"
    spark.read.format("delta").load(current_uri).createOrReplaceTempView(stored)
    on = same_key(spec)
    change_wins = f"s.{spec.key[0]} IS NOT NULL AND (t.{spec.key[0]} IS NULL OR {at_least('s', 't', spec.order)})"
    rows = ", ".join(f"CASE WHEN {change_wins} THEN s.{c} ELSE t.{c} END AS {c}" for c in spec.columns)
    rewritten = spark.sql(
        f"""
        SELECT {rows} FROM {stored} AS t FULL JOIN {unbeaten_view} AS s ON {on}
        WHERE CASE WHEN {change_wins} THEN NOT s._deleted ELSE t.{spec.key[0]} IS NOT NULL END
        """
    )
    conform(spark, rewritten, current_uri).write.format("delta").mode("overwrite").save(current_uri)


def _expire_tombstones(spark: SparkSession, tombstones_uri: str, spec: MergeSpec, as_of: datetime | None) -> int:
    condition = spec.expired_at(as_of)
    expired = 0
    if condition is not None:
        expired = spark.read.format("delta").load(tombstones_uri).where(condition).count()
        if expired:
            spark.sql(f"DELETE FROM delta.`{tombstones_uri}` WHERE {condition}").collect()
    return expired


def _rewrite_tombstones(spark: SparkSession, tombstones_uri: str, decided_view: str, spec: MergeSpec) -> None:
    """Deletes that won become tombstones, live changes that won clear theirs: the table is rewritten
    as its tombstones of keys the changes did not decide plus the deletes that won. A rewrite and not a
    MERGE: tombstones are few beside `current`, and Sail's MERGE took 3-4 s for 100k source rows into an
    empty table, two thirds of the merge into 5M rows of `current`. The key matches null-safely where a
    truncate is kept as the tombstone without a key."""
    stored = f"platform_tombstones_{uuid.uuid4().hex}"
    spark.read.format("delta").load(tombstones_uri).createOrReplaceTempView(stored)
    undecided = spark.sql(
        f"""
        SELECT t.* FROM {stored} AS t LEFT ANTI JOIN {decided_view} AS s
        ON {" AND ".join(f"t.{k} <=> s.{k}" for k in spec.key)}
        """
    )
    won = conform(spark, tombstone_rows(spark.table(decided_view)), tombstones_uri)
    # Partitioned by key, so the table keeps a bounded number of files however often it is rewritten.
    rewritten = undecided.unionByName(won).repartition(*spec.key)
    rewritten.write.format("delta").mode("overwrite").save(tombstones_uri)


def _merge_truncate(
    spark: SparkSession,
    changes: DataFrame,
    current_uri: str,
    tombstones_uri: str,
    spec: MergeSpec,
    as_of: datetime | None,
) -> dict[str, Any]:
    """A batch with a truncate touches every key: the whole stored state and the changes decide, and
    two MERGEs write the outcome. Tombstones go first and the outcome, computed again for the second
    MERGE from the tables as they then are, is the same; so is a rerun after a crash between them."""
    stored = stored_state(spark.read.format("delta").load(current_uri), spark.read.format("delta").load(tombstones_uri))
    decided = truncated(spark, newest_per_key(stored.unionByName(as_state(changes, spec)), spec), spec)
    decided.createOrReplaceTempView("platform_current_truncated")
    _rewrite_tombstones(spark, tombstones_uri, "platform_current_truncated", spec)
    updates = ", ".join(f"t.{c} = s.{c}" for c in spec.columns)
    inserted, values = ", ".join(spec.columns), ", ".join(f"s.{c}" for c in spec.columns)
    spark.sql(
        f"""
        MERGE INTO delta.`{current_uri}` AS t
        USING (SELECT * FROM platform_current_truncated WHERE {spec.key[0]} IS NOT NULL) AS s
        ON {same_key(spec)}
        WHEN MATCHED AND s._deleted THEN DELETE
        WHEN MATCHED THEN UPDATE SET {updates}
        WHEN NOT MATCHED AND NOT s._deleted THEN INSERT ({inserted}) VALUES ({values})
        """
    ).collect()
    return {"changes_in": changes.count(), "tombstones_expired": _expire_tombstones(spark, tombstones_uri, spec, as_of)}


def since_latest_snapshot(changes: DataFrame, snapshot_topic: str) -> DataFrame:
    """The latest full snapshot plus every change published after its download started.

    Older changes are left out on purpose: the snapshot already holds their outcome, and a key deleted
    before the snapshot must not come back through an older create. Without a snapshot: every change.
    """
    latest = changes.where(F.col("_topic") == snapshot_topic).agg(F.max("_kafka_timestamp").alias("_snapshot_at"))
    from_snapshot = (F.col("_topic") == snapshot_topic) & (F.col("_kafka_timestamp") == F.col("_snapshot_at"))
    later = (F.col("_topic") != snapshot_topic) & (F.col("_kafka_timestamp") >= F.col("_snapshot_at"))
    return changes.crossJoin(latest).where(F.col("_snapshot_at").isNull() | from_snapshot | later).drop("_snapshot_at")


def rebuild_current(
    spark: SparkSession,
    changes: DataFrame,
    current_uri: str,
    tombstones_uri: str,
    spec: MergeSpec,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Replace `current` and its tombstones by the newest state per key over `changes` (a full refresh).

    Plain overwrites keep the tables' declared (nullable) schemas; each is one atomic commit. Tombstones
    past their retention at `as_of` are left out, as the incremental merge drops them.
    """
    state = newest_per_key(as_state(changes, spec), spec)
    state = truncated(spark, state, spec) if spec.truncatable else state
    # Ranked once and kept: the two writes and the counts each ranked every change again (2M changes
    # of 1M keys: 3.5-4.2 s, against 1.7-2.1 s kept, at the same peak memory).
    state = checkpointed(state)
    conform(spark, live_rows(state), current_uri).write.format("delta").mode("overwrite").save(current_uri)
    tombstones = tombstone_rows(state)
    condition = spec.expired_at(as_of)
    expired = 0
    if condition is not None:
        expired = tombstones.where(condition).count()
        tombstones = tombstones.where(f"NOT ({condition})")
    conform(spark, tombstones, tombstones_uri).write.format("delta").mode("overwrite").save(tombstones_uri)
    return {"changes_in": state.count(), "tombstones_expired": expired}


@dataclass(frozen=True)
class DayState:
    """A history day's state as its two tables hold it: the live rows and the tombstones, each lazy.

    Kept apart rather than as one frame with the tombstone flag, so that the write of either table
    carries over only its own rows of the day before."""

    live: DataFrame
    tombstones: DataFrame


def _next_day(spark: SparkSession, previous: DayState, raw_uri: str, day: date, spec: MergeSpec) -> DayState:
    """Day `day`'s state: the day before's plus the changes of `day`, newest per key."""
    start = datetime(day.year, day.month, day.day)
    end = start + timedelta(days=1)
    todays = as_state(changes_between(spark, raw_uri, start, end), spec)
    if spec.truncatable:  # a truncate can turn any key into a tombstone: every key is decided again
        state = truncated(
            spark, newest_per_key(stored_state(previous.live, previous.tombstones).unionByName(todays), spec), spec
        )
        live, tombstones = live_rows(state), tombstone_rows(state)
    else:
        # Only the keys changed today need deciding: the others keep yesterday's row, which spares
        # ranking every live key (4.5x DuckDB's time for a day of 1M keys when all were ranked). The
        # changed keys are decided once, for both tables: when each write decided them again, reading
        # yesterday's live rows for it, a day of 1M keys with a tenth changed took 0.73-0.77 s, against
        # 0.57-0.62 s now (DuckDB: 0.84-1.14 s).
        key = list(spec.key)
        touched = todays.select(*key).distinct()
        candidates = stored_state(
            previous.live.join(touched, on=key, how="left_semi"),
            previous.tombstones.join(touched, on=key, how="left_semi"),
        )
        decided = checkpointed(newest_per_key(candidates.unionByName(todays), spec))
        live = previous.live.join(touched, on=key, how="left_anti").unionByName(live_rows(decided))
        tombstones = previous.tombstones.join(touched, on=key, how="left_anti").unionByName(tombstone_rows(decided))
    condition = spec.expired_at(end)
    return DayState(live, tombstones if condition is None else tombstones.where(f"NOT ({condition})"))


def history_days(
    spark: SparkSession,
    history_uri: str,
    tombstones_uri: str,
    raw_uri: str,
    first: date,
    last: date,
    spec: MergeSpec,
) -> dict[str, int]:
    """Recompute history days first..last, two days per replaceWhere; return the live rows per day.

    Day D is day D-1's state plus the changes of D, newest per key. The state includes the tombstones
    of deleted keys, kept per day in a table beside `history`, so a late older update cannot revive a
    deleted key while readers of `history` find the key absent from the day of its delete on. Only day
    first-1 is read, so the cost of a run does not grow with the length of the history.
    """

    def day_of(uri: str, day: date) -> DataFrame:
        table = spark.read.format("delta").load(uri)
        return table.where(F.col("snapshot_date") == F.lit(day.isoformat()).cast("date")).drop("snapshot_date")

    def dated(frames: list[tuple[date, DataFrame]]) -> DataFrame:
        days = [frame.select(F.lit(on.isoformat()).cast("date").alias("snapshot_date"), "*") for on, frame in frames]
        return days[0] if len(days) == 1 else days[0].unionByName(days[1])

    rows: dict[str, int] = {}
    previous_day = first - timedelta(days=1)
    day = first
    while day <= last:
        chunk_end = min(day + timedelta(days=1), last)
        state = DayState(day_of(history_uri, previous_day), day_of(tombstones_uri, previous_day))
        states = []
        current_day = day
        while current_day <= chunk_end:
            state = _next_day(spark, state, raw_uri, current_day, spec)
            states.append((current_day, state))
            current_day += timedelta(days=1)
        predicate = f"snapshot_date >= '{day.isoformat()}' AND snapshot_date <= '{chunk_end.isoformat()}'"
        # Tombstones first: a crash between the two commits leaves history as it was, and a rerun
        # recomputes both from day first-1.
        for uri, frame in (
            (tombstones_uri, dated([(on, day_state.tombstones) for on, day_state in states])),
            (history_uri, dated([(on, day_state.live) for on, day_state in states])),
        ):
            writer = conform(spark, frame, uri).write.format("delta").mode("overwrite")
            writer.option("replaceWhere", predicate).save(uri)
        for state_day in range((chunk_end - day).days + 1):
            label = (day + timedelta(days=state_day)).isoformat()
            rows[label] = day_of(history_uri, day + timedelta(days=state_day)).count()
        previous_day = chunk_end
        day = chunk_end + timedelta(days=1)
    return rows


def duplicate_keys(spark: SparkSession, uri: str, key: tuple[str, ...], limit: int = 20) -> list[tuple]:
    """Keys that occur more than once in a table (the examples a failing uniqueness check shows)."""
    grouped = spark.read.format("delta").load(uri).groupBy(*key).count().where("count > 1").limit(limit)
    return [tuple(row[k] for k in key) for row in grouped.collect()]


def row_count(spark: SparkSession, uri: str) -> int:
    return spark.read.format("delta").load(uri).count()
