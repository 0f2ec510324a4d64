"""The migration for a contract change the tables cannot follow in place (a narrowed type, a changed key
or sequence, a field made required): rebuild the entity's tables from the landing archive with the new
contract, then publish each table in one commit.

The rebuild runs the same code as the assets (decoding, the full refresh of `current`, the history
days, every change applied to `scd2` at once) into a staging area beside the lake, so readers keep
the old tables until each new one replaces its old version atomically; a failed migration leaves
every published table as it was.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pyarrow.compute as pc

from platform_assets.entity import ensure_tables, merge_spec, raw_keys_published, replace_raw
from platform_assets.erasure import erased_record_test
from platform_assets.lib.archive import DECODED_LANDING_COLUMNS, landing_records
from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import SchemaLookup, decode_batch
from platform_assets.lib.erasure import KEYED_LAYERS
from platform_assets.lib.evolution import identity_properties
from platform_assets.lib.pii import pii_key, protect_columns
from platform_assets.lib.records import snapshot_topic
from platform_assets.lib.tables import LANDING_SCHEMA, QUARANTINE_SCHEMA, raw_schema, rows_table
from resources.lake import LakeResource
from spark.cdc import history_days, rebuild_current, since_latest_snapshot
from spark.scd2 import merge_into_scd2

# Every table after landing.
REBUILT_LAYERS = ("quarantine", *KEYED_LAYERS)


def migrate(
    contract: Contract, lake: LakeResource, spark: Any, schema_lookup: SchemaLookup | None = None
) -> dict[str, int]:
    """Rebuild and publish every table of the entity after landing; returns the rows published per table."""
    staging = LakeResource(
        root=f"{lake.resolved_root}/_migrations/{contract.name}-{uuid.uuid4().hex[:8]}",
        storage_options=lake.storage_options,
    )
    name = contract.name
    secret = pii_key()
    archive = lake.read("landing", name, schema=LANDING_SCHEMA, columns=DECODED_LANDING_COLUMNS)
    batch = decode_batch(
        contract,
        landing_records(archive),
        lambda fields: protect_columns(contract, fields, secret),
        schema_lookup,
        is_erased=erased_record_test(lake, contract, secret, schema_lookup),
    )
    ensure_tables(staging, contract, REBUILT_LAYERS)
    raw = batch.table(raw_schema(contract))
    replace_raw(staging, contract, raw, "true")
    staging.append("quarantine", name, rows_table(batch.quarantined, QUARANTINE_SCHEMA))
    spec = merge_spec(contract)
    every_change = spark.read.format("delta").load(staging.uri("raw", name))
    rebuild_current(
        spark,
        since_latest_snapshot(every_change, snapshot_topic(name)),
        staging.uri("current", name),
        staging.uri("current_tombstones", name),
        spec,
        as_of=datetime.now(UTC),
    )
    merge_into_scd2(spark, every_change, staging.uri("scd2", name), staging.uri("scd2_tombstones", name), spec)
    if raw.num_rows:
        # From the first day with a change to the newest day history holds (days without changes included).
        first = pc.min(raw.column("_event_hour")).as_py().date()
        last = max(pc.max(raw.column("_event_hour")).as_py().date(), _newest_history_day(lake, name) or first)
        history_days(
            spark,
            staging.uri("history", name),
            staging.uri("history_tombstones", name),
            staging.uri("raw", name),
            first,
            last,
            spec,
        )
    published = {layer: lake.publish(layer, name, staging.table(layer, name)) for layer in REBUILT_LAYERS}
    lake.set_properties("raw", name, identity_properties(contract))
    raw_keys_published(lake, contract)
    if "://" not in staging.resolved_root:
        shutil.rmtree(staging.resolved_root, ignore_errors=True)
    return published


def _newest_history_day(lake: LakeResource, entity: str) -> date | None:
    days = lake.select("history", entity, "select max(snapshot_date) as newest from history")
    return None if days is None else days.column("newest")[0].as_py()
