"""SCD2 on Spark: each key's versions as intervals (`valid_from`, `valid_to`, `is_current`), maintained
hour by hour from raw. The rules mirror `platform_assets.lib.scd2`, the plain-Python reference that
tests compare this with.

A key's versions are the changes that were the newest in effect at some moment; a change that never was
never can be, whatever arrives later. So the versions of the keys an hour touches are recomputed from
their stored versions plus the hour's changes alone, and replace those keys' rows. Deletes that are
versions (they close the interval before them) are kept beside the table in `scd2_tombstones`, as
`current` keeps its tombstones, so that a later change can still be placed against them; a truncate
(a change without a key) is kept there too and counts as a delete of every key.
"""

from __future__ import annotations

import uuid
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark.cdc import MergeSpec, as_state, checkpointed, stored_state

VALIDITY_COLUMNS = ("valid_from", "valid_to", "is_current")


def valid_from(spec: MergeSpec) -> Column:
    """When a change takes effect: its event time, or the start of the hour it is filed under when that
    is not its event time's hour (a snapshot row, a change without an event time)."""
    event_time, hour = F.col(spec.event_time), F.col("_event_hour")
    return F.when(event_time.isNotNull() & (F.date_trunc("hour", event_time) == hour), event_time).otherwise(hour)


def versions(candidates: DataFrame, spec: MergeSpec) -> DataFrame:
    """The versions among each key's candidate changes (state columns, `_deleted`, `_arriving`), with
    `valid_from` and `valid_to`. A change is a version when it is the newest of the changes in effect at
    its own moment; of the same change stored and arriving again, the arriving one is kept (a backfill
    after a logic fix rewrites what it decodes again).

    A key with one candidate (a new key: most keys of an hour of an append-mostly entity) is its own
    only version, and no window sorts it: the windows took 10 s for 700k new keys."""
    key = list(spec.key)
    counts = candidates.groupBy(*key).agg(F.count(F.lit(1)).alias("_candidates"))
    counted = candidates.join(counts, key)
    lone = counted.where("_candidates = 1").select(
        *candidates.columns, valid_from(spec).alias("valid_from"), F.lit(None).cast("timestamp").alias("valid_to")
    )
    several = counted.where("_candidates > 1").drop("_candidates")
    return _chains(several, spec).unionByName(lone.drop("_arriving"))


def _chains(candidates: DataFrame, spec: MergeSpec) -> DataFrame:
    """`versions` of keys with several candidates: ordered, copies dropped, each kept while in effect."""
    key = list(spec.key)
    # The windows over one key share one shuffle (narrow plans: see merge_into_scd2); finding copies
    # over key and order takes one more, where a `lag` per order column took a window each.
    by_order = Window.partitionBy(*key).orderBy(
        *[F.col(c).asc_nulls_first() for c in spec.order], F.col("_arriving").desc()
    )
    # The same change stored and arriving: one window over key and order (null-safe, as grouping is).
    same_change = Window.partitionBy(*key, *spec.order).orderBy(F.col("_arriving").desc())
    by_moment = Window.partitionBy(*key).orderBy("valid_from")
    in_effect = by_moment.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    return (
        candidates.withColumn("_rank", F.row_number().over(by_order))
        .withColumn("_copy", F.row_number().over(same_change) > 1)
        .where(~F.col("_copy"))
        .withColumn("valid_from", valid_from(spec))
        .withColumn("_newest_in_effect", F.max("_rank").over(in_effect))
        .where("_rank = _newest_in_effect")
        .withColumn("valid_to", F.lead("valid_from").over(by_moment))
        .drop("_copy", "_rank", "_newest_in_effect", "_arriving")
    )


def merge_into_scd2(
    spark: SparkSession, changes: DataFrame, scd2_uri: str, tombstones_uri: str, spec: MergeSpec
) -> dict[str, Any]:
    """Apply raw changes to `scd2` and its tombstones: the keys they touch (every key, for a truncate)
    get their versions recomputed from what is stored plus `changes`, and only their rows are replaced.

    Each table is replaced in one MERGE commit, tombstones first. The second MERGE computes the versions
    again from the tables as they then are and gets the same ones (the new tombstones are versions, the
    other versions are still stored or arriving), and so does a rerun after a crash between the two.
    """
    key, first = list(spec.key), spec.key[0]
    arriving = as_state(changes, spec).withColumn("_arriving", F.lit(True))
    stored = stored_state(
        spark.read.format("delta").load(scd2_uri).select(*spec.columns),
        spark.read.format("delta").load(tombstones_uri).select(*spec.columns),
    ).withColumn("_arriving", F.lit(False))
    keyed = F.col(first).isNotNull()
    by_kind = changes.groupBy(F.col(first).isNull().alias("truncate")).count().collect()
    arrived: dict[bool, int] = {row["truncate"]: row["count"] for row in by_kind}
    if not arrived:
        return {"changes_in": 0}
    truncating = spec.truncatable and arrived.get(True, 0) > 0
    keyed_changes = arriving.where(keyed)
    # A truncate touches every key: then every stored row is a candidate and no join picks them. Plans
    # are kept narrow on purpose: Sail in cluster mode runs a query's connected stages at once, and two
    # workers of 8 task slots refused a wider one.
    touched = None if truncating else keyed_changes.select(*key).distinct()
    candidates = stored.where(keyed)
    if touched is not None:
        candidates = candidates.join(touched, key, "left_semi")
    candidates = candidates.unionByName(keyed_changes)
    if spec.truncatable:
        # Truncates are few (one per TRUNCATE statement): taken to the driver, each is named with every
        # candidate's key, and `versions` drops the copies; this keeps the plan narrow.
        truncates = stored.unionByName(arriving).where(~keyed).drop(*key)
        if few := truncates.collect():
            named = spark.createDataFrame(few, truncates.schema).crossJoin(candidates.select(*key))
            candidates = candidates.unionByName(named.select(*candidates.columns))
    # Both tables are replaced from the versions: computed once (17 s for 100k new keys before, 1.8 s).
    chains = checkpointed(versions(candidates, spec))
    live = chains.where(~F.col("_deleted")).select(
        "valid_from", "valid_to", F.col("valid_to").isNull().alias("is_current"), *spec.columns
    )
    tombstones = chains.where(F.col("_deleted")).select(*spec.columns)
    if truncating:
        truncates_arriving = arriving.where(~keyed).select(*spec.columns).dropDuplicates(list(spec.order))
        tombstones = tombstones.unionByName(truncates_arriving)
    _replace_rows(spark, tombstones_uri, tombstones, touched, spec, (*spec.columns,))
    _replace_rows(spark, scd2_uri, live, touched, spec, (*VALIDITY_COLUMNS, *spec.columns))
    return {"changes_in": sum(arrived.values())}


def _replace_rows(
    spark: SparkSession,
    uri: str,
    rows: DataFrame,
    touched: DataFrame | None,
    spec: MergeSpec,
    columns: tuple[str, ...],
) -> None:
    """Replace the rows of the `touched` keys (None: of every key) in the table at `uri` by `rows`, in one
    MERGE. A row is one change of one key (its key and order columns, null-safe: a truncate has no key)."""
    identity = (*spec.key, *spec.order)
    table = spark.read.format("delta").load(uri)
    if touched is None:
        stored = table.where(F.col(spec.key[0]).isNotNull()).select(*identity)
    else:
        stored = table.join(touched, list(spec.key), "left_semi").select(*identity)
    # One outer join, so that the plan of `rows` appears once in the MERGE: a stored row without a new
    # one is gone.
    stored = stored.select(*(F.col(c).alias(f"_stored_{c}") for c in identity))
    new = rows.withColumn("_new", F.lit(True))
    matched = new.join(stored, [F.col(c).eqNullSafe(F.col(f"_stored_{c}")) for c in identity], "full_outer")
    source = matched.select(
        *(F.coalesce(F.col(c), F.col(f"_stored_{c}")).alias(c) if c in identity else F.col(c) for c in rows.columns),
        F.col("_new").isNull().alias("_gone"),
    )
    view = f"platform_scd2_source_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    updates = ", ".join(f"t.{c} = s.{c}" for c in columns)
    inserted, values = ", ".join(columns), ", ".join(f"s.{c}" for c in columns)
    spark.sql(
        f"""
        MERGE INTO delta.`{uri}` AS t
        USING {view} AS s
        ON {" AND ".join(f"t.{c} <=> s.{c}" for c in identity)}
        WHEN MATCHED AND s._gone THEN DELETE
        WHEN MATCHED THEN UPDATE SET {updates}
        WHEN NOT MATCHED AND NOT s._gone THEN INSERT ({inserted}) VALUES ({values})
        """
    ).collect()
