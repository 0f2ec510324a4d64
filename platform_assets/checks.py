"""Asset checks generated from each contract, evaluated inside the asset's own step.

Every quality gate is declared `blocking=True` on the asset it guards, so a failure stops every
downstream asset of the same run, however the run was started (UI, schedule, sensor, backfill); the
history sensor also waits for them to pass before it starts history or the marts. A failure message
says which table, which partition, which rule, how many rows, and what to do next. One check only
warns: fields that producers send but the contract does not name (schema drift) stop nothing, they
tell an engineer about a new field before a user asks.
"""

from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from platform_assets.lib.records import LANDING_POSITION_COLUMNS
from platform_assets.quality import Outcome

VALID_CHANGES = "valid_changes"
QUARANTINE_RATE = "quarantine_rate"
ROW_COUNT_SANITY = "row_count_sanity"
UNIQUE_KEY = "unique_key"
DECLARED_TYPES = "declared_types"
FRESHNESS = "freshness"
ONE_ROW_PER_KEY_PER_DAY = "one_row_per_key_per_day"
UNKNOWN_FIELDS = "unknown_fields"
NOTHING_EXPIRED_BEFORE_LANDING = "nothing_expired_before_landing"
EVERY_RECORD_ACCOUNTED = "every_record_accounted"

DESCRIPTIONS = {
    VALID_CHANGES: "Keys, sequence and event time are present, declared columns exist, values are accepted, "
    "and the contract's own expectations hold (Great Expectations).",
    QUARANTINE_RATE: "The share of the partition's records sent to quarantine stays below the contract's "
    "`quality.max_quarantine_rate`.",
    ROW_COUNT_SANITY: "The partition's row count did not change more than `quality.max_row_count_change` "
    "against the previous partition (judged when the contract sets it).",
    UNIQUE_KEY: "Exactly one row (live or tombstone) per key.",
    DECLARED_TYPES: "The stored table has every contract field with the contract's type.",
    FRESHNESS: "The newest record of the latest partition is younger than the contract's "
    "`quality.freshness_hours` (judged when the contract sets it; backfills of old partitions are not judged).",
    ONE_ROW_PER_KEY_PER_DAY: "Exactly one row per key and snapshot date in the rewritten days (Great Expectations).",
    UNKNOWN_FIELDS: "Warns (never blocks) when records carry fields the contract does not name; they are kept in "
    "`_extra` until the contract adds them (then a backfill fills the new column from the archive).",
    NOTHING_EXPIRED_BEFORE_LANDING: "No record was deleted by Kafka retention before this run could land it.",
    EVERY_RECORD_ACCOUNTED: "Every landed record filed under the partition is stored once in raw or quarantine, "
    "or counted as skipped (Debezium tombstone) or erased.",
}


def spec(asset: AssetKey, name: str) -> AssetCheckSpec:
    """Every platform check blocks: nothing downstream materializes past a failure."""
    return AssetCheckSpec(name, asset=asset, blocking=True, description=DESCRIPTIONS[name])


def warning_spec(asset: AssetKey, name: str) -> AssetCheckSpec:
    """A check that informs and stops nothing."""
    return AssetCheckSpec(name, asset=asset, blocking=False, description=DESCRIPTIONS[name])


def table_name(asset: AssetKey) -> str:
    return "/".join(asset.path)


def from_outcomes(asset: AssetKey, name: str, partition: str, outcomes: Iterable[Outcome]) -> AssetCheckResult:
    outcomes = list(outcomes)
    failed = [o for o in outcomes if not o.success]
    rows = outcomes[0].element_count if outcomes else 0
    metadata: dict = {
        "rows_checked": rows,
        "rules": len(outcomes),
        "rules_failed": len(failed),
        "failures": MetadataValue.json(
            [{"rule": o.rule.describe(), "rows": o.unexpected_count, "examples": o.sample} for o in failed]
        ),
    }
    if not failed:
        return AssetCheckResult(asset_key=asset, check_name=name, passed=True, metadata=metadata)
    lines = [
        f"{o.rule.describe()} fails for {o.unexpected_count} of {o.element_count} rows, e.g. {o.sample}" for o in failed
    ]
    return AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=False,
        metadata=metadata,
        description=f"{table_name(asset)} partition {partition}: " + "; ".join(lines) + ". Fix the producer or the "
        "contract, then re-materialize this partition; downstream assets wait until it passes.",
    )


def quarantine_rate(asset: AssetKey, partition: str, quarantined: int, total: int, limit: float) -> AssetCheckResult:
    rate = quarantined / total if total else 0.0
    passed = rate <= limit
    return AssetCheckResult(
        asset_key=asset,
        check_name=QUARANTINE_RATE,
        passed=passed,
        metadata={"quarantined": quarantined, "records": total, "rate": round(rate, 4), "limit": limit},
        description=None
        if passed
        else f"{table_name(asset)} partition {partition}: {quarantined} of {total} records ({rate:.1%}) went to "
        f"quarantine, above the limit {limit:.1%}. Read their `reason` in the quarantine table, fix the producer "
        "or the contract, then re-materialize this partition.",
    )


def row_count_sanity(
    asset: AssetKey, partition: str, rows: int, previous: int | None, max_change: float | None
) -> AssetCheckResult:
    change = None if not previous else abs(rows - previous) / previous
    passed = max_change is None or change is None or change <= max_change
    # A limit is shown only when the contract sets one: `max_change 0` would read as "no change allowed".
    limit = {} if max_change is None else {"max_change": max_change}
    return AssetCheckResult(
        asset_key=asset,
        check_name=ROW_COUNT_SANITY,
        passed=passed,
        metadata={"rows": rows, "previous_partition_rows": previous or 0, "judged": max_change is not None, **limit},
        description=None
        if passed
        else f"{table_name(asset)} partition {partition}: {rows} rows against {previous} in the previous partition, "
        f"a change of {change:.0%}, above `quality.max_row_count_change` {max_change:.0%}. Check the producer and "
        "the landing lag; if the change is real (a launch, a catch-up), raise the limit in the contract and "
        "re-materialize this partition.",
    )


def unique_key(asset: AssetKey, partition: str, duplicates: list[tuple], key: tuple[str, ...]) -> AssetCheckResult:
    passed = not duplicates
    return AssetCheckResult(
        asset_key=asset,
        check_name=UNIQUE_KEY,
        passed=passed,
        metadata={"duplicate_keys": len(duplicates), "examples": MetadataValue.json([list(d) for d in duplicates[:5]])},
        description=None
        if passed
        else f"{table_name(asset)} after partition {partition}: {len(duplicates)} keys ({', '.join(key)}) have more "
        "than one row. Rebuild the table from the archive (full refresh) and report the merge bug.",
    )


def declared_types(asset: AssetKey, partition: str, stored: pa.Schema, declared: pa.Schema) -> AssetCheckResult:
    stored_types = {f.name: f.type for f in stored}
    wrong = {
        f.name: f"{stored_types.get(f.name, 'missing')} instead of {f.type}"
        for f in declared
        if stored_types.get(f.name) != f.type
    }
    return AssetCheckResult(
        asset_key=asset,
        check_name=DECLARED_TYPES,
        passed=not wrong,
        metadata={"columns_checked": len(declared), "mismatches": MetadataValue.json(wrong)},
        description=None
        if not wrong
        else f"{table_name(asset)} partition {partition}: stored columns differ from the contract: {wrong}. The "
        "contract changed without a migration: rebuild the table from the archive (delete it and backfill).",
    )


def freshness(
    asset: AssetKey, partition: str, newest: datetime | None, now: datetime, limit_hours: int | None, latest: bool
) -> AssetCheckResult:
    age_hours = None if newest is None else (now - newest).total_seconds() / 3600
    judged = latest and limit_hours is not None
    passed = not judged or (age_hours is not None and limit_hours is not None and age_hours <= limit_hours)
    return AssetCheckResult(
        asset_key=asset,
        check_name=FRESHNESS,
        passed=passed,
        metadata={
            "newest_record_age_hours": round(age_hours, 2) if age_hours is not None else -1.0,
            "judged": judged,
            **({} if limit_hours is None else {"limit_hours": limit_hours}),
        },
        description=None
        if passed
        else f"{table_name(asset)} partition {partition}: the newest record is "
        f"{'missing' if age_hours is None else f'{age_hours:.1f} h old'}, above {limit_hours} h. Check the "
        "producer and the lag sensor.",
    )


def unknown_fields(asset: AssetKey, partition: str, counts: dict[str, int], records: int) -> AssetCheckResult:
    passed = not counts
    named = ", ".join(f"`{name}` ({count} of {records} records)" for name, count in sorted(counts.items()))
    return AssetCheckResult(
        asset_key=asset,
        check_name=UNKNOWN_FIELDS,
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        metadata={"unknown_fields": MetadataValue.json(counts), "records": records},
        description=None
        if passed
        else f"{table_name(asset)} partition {partition}: producers send fields the contract does not name: {named}. "
        "They are kept in `_extra`; to adopt one, add it to the contract (a new nullable field is added to the "
        "tables in place) and backfill the partitions that carried it.",
    )


def expired_before_landing(asset: AssetKey, expired: dict[str, list[int]]) -> AssetCheckResult:
    """`expired` maps `topic[partition]` to the first and last offset retention deleted before landing."""
    count = sum(last - first + 1 for first, last in expired.values())
    where = ", ".join(f"{partition} offsets {first}..{last}" for partition, (first, last) in sorted(expired.items()))
    return AssetCheckResult(
        asset_key=asset,
        check_name=NOTHING_EXPIRED_BEFORE_LANDING,
        passed=not expired,
        metadata={"expired_records": count, "expired_offsets": MetadataValue.json(expired)},
        description=None
        if not expired
        else f"{table_name(asset)}: {count} records were deleted by Kafka retention before they were landed "
        f"({where}); the platform never saw them. Have the source re-publish them (or load a full snapshot), and "
        "land more often than the topics' retention.ms (lag sensor, PLATFORM_MAX_DELAY_S).",
    )


def every_record_accounted(
    asset: AssetKey, partition: str, landed: pa.Table, stored: pa.Table, set_aside: int
) -> AssetCheckResult:
    """Reconcile a partition: the landed records filed under it against the raw and quarantine rows read
    back after the write (`stored`), plus the records decoding set aside and counted (`set_aside`).
    Both are tables with landing's position columns, compared in Arrow: as Python tuples, a million
    of them took 2 s of an hour's raw step. Topics are compared by their number in the sorted list of
    both tables' topics: hashing the topic's text into every grouping and the join was half of the check
    (0.9-1.4 s against 0.4-0.7 s for 714k records)."""
    columns = list(LANDING_POSITION_COLUMNS)
    distinct = pc.unique(pa.concat_arrays([pc.unique(table["topic"]) for table in (landed, stored)]))
    sorted_topics = pc.take(distinct, pc.array_sort_indices(distinct))

    def numbered(positions: pa.Table) -> pa.Table:
        return positions.select(columns).set_column(0, "topic", pc.index_in(positions["topic"], sorted_topics))

    landed_here = numbered(landed).group_by(columns).aggregate([])
    counts = numbered(stored).group_by(columns).aggregate([([], "count_all")])
    doubled = counts.filter(pc.field("count_all") > 1)
    stray = counts.join(landed_here, columns, join_type="left anti")
    missing = landed_here.num_rows - (counts.num_rows - stray.num_rows) - set_aside

    def named(positions: pa.Table) -> str:
        first = positions.sort_by([(column, "ascending") for column in columns]).slice(0, 5)
        first = first.set_column(0, "topic", pc.take(sorted_topics, first["topic"]))
        return ", ".join(f"{row['topic']}[{row['partition']}]@{row['offset']}" for row in first.to_pylist())

    problems = [
        *([f"{missing} of {landed_here.num_rows} landed records are in neither raw nor quarantine"] if missing else []),
        *([f"{doubled.num_rows} are stored more than once ({named(doubled)})"] if doubled.num_rows else []),
        *(
            [f"{stray.num_rows} stored rows were not landed under this partition ({named(stray)})"]
            if stray.num_rows
            else []
        ),
    ]
    return AssetCheckResult(
        asset_key=asset,
        check_name=EVERY_RECORD_ACCOUNTED,
        passed=not problems,
        metadata={"landed": landed_here.num_rows, "stored": stored.num_rows, "set_aside": set_aside},
        description=None
        if not problems
        else f"{table_name(asset)} partition {partition}: " + "; ".join(problems) + ". Re-materialize this "
        "partition; if it still fails, report it with these positions (another writer may have changed the tables).",
    )
