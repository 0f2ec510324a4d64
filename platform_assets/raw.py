"""Raw: the hourly change log, decoded and typed, with bad records in quarantine.

Partition H is a pure function of the landing records whose event hour is H: a re-materialization
replaces exactly that hour (Delta replaceWhere) with the same rows, in both `raw` and `quarantine`.
"""

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from platform_assets import checks
from platform_assets.entity import (
    asset_key,
    column_schema,
    ensure_tables,
    entity_asset_properties,
    lake_pool,
    partition_label,
    replace_raw,
)
from platform_assets.erasure import erased_record_test
from platform_assets.lib.archive import DECODED_LANDING_COLUMNS, landing_records
from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import decode_batch
from platform_assets.lib.pii import pii_key, protect_columns
from platform_assets.lib.records import KAFKA_POSITION_COLUMNS, LANDING_POSITION_COLUMNS
from platform_assets.lib.tables import (
    LANDING_SCHEMA,
    QUARANTINE_SCHEMA,
    hour_window_filter,
    hour_window_predicate,
    raw_schema,
    rows_table,
)
from platform_assets.partitions import DEFAULT_PARTITIONS, Partitions
from platform_assets.quality import raw_rules, validate_table
from resources.lake import LakeResource
from resources.schema_registry import SchemaRegistryResource

_LANDED_POSITIONS = pa.schema([LANDING_SCHEMA.field(column) for column in LANDING_POSITION_COLUMNS])


def read_hours(
    lake: LakeResource,
    layer: str,
    entity: str,
    start: datetime,
    end: datetime,
    schema: pa.Schema | None,
    columns: list[str] | None = None,
) -> pa.Table:
    """The rows of event hours [start, end) (only `columns` when named): delta-rs opens only the files
    of those hours (partition values, file statistics), so the read costs the same however long the
    table's history is."""
    window = hour_window_filter("_event_hour", start, end)
    files_where = hour_window_predicate("_event_hour", start, end)
    return lake.read(layer, entity, window, schema, files_where=files_where, columns=columns)


def _stored_positions(lake: LakeResource, contract: Contract, start: datetime, end: datetime) -> pa.Table:
    """The Kafka positions of the raw and quarantine rows of [start, end), read back from the tables
    (one read of each: every read prunes the table's whole file list), named as landing names them."""
    tables = []
    for layer, schema in (("raw", raw_schema(contract)), ("quarantine", QUARANTINE_SCHEMA)):
        stored = read_hours(lake, layer, contract.name, start, end, schema, list(KAFKA_POSITION_COLUMNS))
        tables.append(stored.rename_columns(list(LANDING_POSITION_COLUMNS)).cast(_LANDED_POSITIONS))
    return pa.concat_tables(tables)


def report(context: AssetExecutionContext, key: AssetKey, metadata: dict) -> Iterator[MaterializeResult]:
    """The materialization of one of the step's two tables. Both tables are always written together;
    one that the run did not select cannot be a result of the step, so it is recorded as an event of
    the run for every partition the run covers, and the UI still shows what was written."""
    if key in context.selected_asset_keys:
        yield MaterializeResult(asset_key=key, metadata=metadata)
        return
    for partition in context.partition_keys:
        context.log_event(AssetMaterialization(asset_key=key, partition=partition, metadata=metadata))


def build_raw_assets(contract: Contract, partitions: Partitions = DEFAULT_PARTITIONS):
    raw_key, quarantine_key = asset_key("raw", contract), asset_key("quarantine", contract)
    upstream = ("landing", "snapshot") if contract.snapshot_url else ("landing",)

    def spec(key: AssetKey, description: str, schema: pa.Schema, skippable: bool) -> AssetSpec:
        return AssetSpec(
            key,
            description=description,
            **entity_asset_properties(contract, key.path[0]),
            kinds={"delta", "python"},
            deps=[asset_key(layer, contract) for layer in upstream],
            partitions_def=partitions.hourly,
            metadata={"dagster/column_schema": column_schema(schema, contract)},
            skippable=skippable,
        )

    @multi_asset(
        name=f"raw_{contract.name}",
        specs=[
            spec(
                raw_key,
                f"Hourly change log of {contract.name}: decoded, typed, PII protected. {contract.description}",
                raw_schema(contract),
                skippable=False,
            ),
            spec(
                quarantine_key,
                f"Records of {contract.name} that could not be decoded, with the original bytes, "
                "their Kafka position and a reason to act on.",
                QUARANTINE_SCHEMA,
                skippable=True,
            ),
        ],
        check_specs=[
            checks.spec(raw_key, checks.VALID_CHANGES),
            checks.spec(raw_key, checks.QUARANTINE_RATE),
            checks.spec(raw_key, checks.ROW_COUNT_SANITY),
            checks.spec(raw_key, checks.DECLARED_TYPES),
            checks.spec(raw_key, checks.FRESHNESS),
            checks.warning_spec(raw_key, checks.UNKNOWN_FIELDS),
            checks.spec(raw_key, checks.EVERY_RECORD_ACCOUNTED),
        ],
        backfill_policy=BackfillPolicy.single_run(),
        pool=lake_pool(contract, "raw"),
        # `raw/<e>` can be materialized alone; quarantine is written all the same (see `report`).
        can_subset=True,
    )
    def raw_assets(context: AssetExecutionContext, lake: LakeResource, schema_registry: SchemaRegistryResource):
        selected_checks = context.selected_asset_check_keys
        with lake.reusing_tables():  # the step reads raw some ten times: one load of its log, not ten
            results = list(decode_hours(context, lake, schema_registry))
        for result in results:
            is_check = isinstance(result, AssetCheckResult)
            if not is_check or AssetCheckKey(raw_key, str(result.check_name)) in selected_checks:
                yield result

    def decode_hours(context: AssetExecutionContext, lake: LakeResource, schema_registry: SchemaRegistryResource):
        started = time.monotonic()
        window = context.partition_time_window
        secret = pii_key()
        ensure_tables(lake, contract, ("raw", "quarantine", "raw_keys"))
        landed = read_hours(
            lake, "landing", contract.name, window.start, window.end, LANDING_SCHEMA, DECODED_LANDING_COLUMNS
        )
        records = landing_records(landed)
        schema_lookup = schema_registry.lookup()
        batch = decode_batch(
            contract,
            records,
            lambda fields: protect_columns(contract, fields, secret),
            schema_lookup,
            is_erased=erased_record_test(lake, contract, secret, schema_lookup),
            first_hour=partitions.first_hour,
        )
        predicate = hour_window_predicate("_event_hour", window.start, window.end)
        raw_table = batch.table(raw_schema(contract))
        replace_raw(lake, contract, raw_table, predicate)
        lake.replace_where("quarantine", contract.name, rows_table(batch.quarantined, QUARANTINE_SCHEMA), predicate)
        operations = Counter(batch.platform["_op"])
        errors = Counter(row["error"] for row in batch.quarantined)
        context.log.info(
            f"{contract.name} {window.start:%Y-%m-%d %H:00}..{window.end:%Y-%m-%d %H:00}: {len(records)} landed, "
            f"{batch.size} raw, {len(batch.quarantined)} quarantined"
        )
        yield from report(
            context,
            raw_key,
            {
                "dagster/row_count": batch.size,
                "records_in": len(records),
                "quarantined": len(batch.quarantined),
                "skipped_tombstones": batch.skipped["tombstone"],
                "skipped": MetadataValue.json(dict(batch.skipped)),
                "dropped_erased": batch.erased,
                "operations": MetadataValue.json(dict(operations)),
                "unknown_fields": MetadataValue.json(dict(sorted(batch.unknown_fields.items()))),
                "duration_s": round(time.monotonic() - started, 3),
            },
        )
        yield from report(
            context,
            quarantine_key,
            {
                "dagster/row_count": len(batch.quarantined),
                "errors": MetadataValue.json(dict(errors)),
                "quarantine_rate": round(len(batch.quarantined) / len(records), 4) if records else 0.0,
            },
        )
        if not context.selected_asset_check_keys:
            return  # quarantine alone: raw's checks are not part of the run

        label = partition_label(context)
        yield checks.every_record_accounted(
            raw_key,
            label,
            landed,
            _stored_positions(lake, contract, window.start, window.end),
            sum(batch.skipped.values()) + batch.erased,
        )
        outcomes = validate_table(raw_table, raw_rules(contract))
        yield checks.from_outcomes(raw_key, checks.VALID_CHANGES, label, outcomes)
        yield checks.quarantine_rate(
            raw_key, label, len(batch.quarantined), len(records), contract.quality.max_quarantine_rate
        )
        span = window.end - window.start
        previous = read_hours(
            lake, "raw", contract.name, window.start - span, window.start, raw_schema(contract), ["_event_hour"]
        ).num_rows
        yield checks.row_count_sanity(
            raw_key, label, raw_table.num_rows, previous, contract.quality.max_row_count_change
        )
        stored = lake.table("raw", contract.name)
        stored_schema = pa.schema(stored.schema().to_arrow()) if stored is not None else raw_schema(contract)
        yield checks.declared_types(raw_key, label, stored_schema, raw_schema(contract))
        yield checks.unknown_fields(raw_key, label, dict(batch.unknown_fields), len(records))
        newest = pc.max(raw_table.column("_kafka_timestamp")).as_py() if raw_table.num_rows else None
        now = datetime.now(UTC)
        yield checks.freshness(
            raw_key, label, newest, now, contract.quality.freshness_hours, latest=window.end >= now - span
        )

    return raw_assets
