"""Rows of the landing archive and the positions that make landing exactly-once.

Shared by the two writers of `landing/<entity>`: Kafka landing and full snapshot loads.
"""

from __future__ import annotations

from datetime import datetime
from itertools import accumulate
from operator import itemgetter

import pyarrow as pa

from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import SchemaLookup, landing_hour
from platform_assets.lib.records import HourRange, LandingRecord
from platform_assets.lib.tables import LANDING_SCHEMA

# The app transaction of a landing table that each erasure bumps. A landing commit records the value it
# read before it read the erasure lists, so a commit that filtered with lists older than an erasure
# fails (Delta transaction conflict) and is redone with the new lists.
ERASURE_GENERATION = "erasures"


def app_id(entity: str, topic: str, partition: int) -> str:
    """The Delta app transaction that records the last landed offset of one topic partition."""
    return f"landing:{entity}:{topic}:{partition}"


def landing_rows(
    contract: Contract,
    records: list[LandingRecord],
    schema_lookup: SchemaLookup | None,
    landed_at: datetime,
    first_hour: datetime,
) -> pa.Table:
    """The landing table rows of a batch; column by column, since this runs at Kafka speed.

    Each record is filed under an hourly partition that exists: `first_hour` (the first partition) to
    the hour of `landed_at` (see `decode.landing_hour`).
    """
    topics, partitions, offsets, timestamps_ms, keys, values, headers = (
        list(map(itemgetter(column), records)) for column in range(LandingRecord._fields.index("landed_at"))
    )
    existing = HourRange.landed(first_hour, landed_at)
    hours = [landing_hour(contract, record, schema_lookup, existing) for record in records]
    column_type = {column.name: column.type for column in LANDING_SCHEMA}
    return pa.Table.from_arrays(
        [
            pa.array(topics, pa.string()),
            pa.array(partitions, pa.int32()),
            pa.array(offsets, pa.int64()),
            pa.array(timestamps_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(column_type["timestamp"]),
            pa.array(keys, pa.binary()),
            pa.array(values, pa.binary()),
            _header_lists(headers, column_type["headers"]),
            pa.array(hours, column_type["_event_hour"]),
            pa.repeat(pa.scalar(landed_at, column_type["_landed_at"]), len(records)),
        ],
        schema=LANDING_SCHEMA,
    )


def _header_lists(headers: list[tuple[tuple[str, bytes | None], ...]], list_type: pa.ListType) -> pa.Array:
    """Each record's headers as a list of key/value structs, built flat (most records have none)."""
    pairs = [pair for record_headers in headers for pair in record_headers]
    entries = pa.StructArray.from_arrays(
        [pa.array([k for k, _ in pairs], pa.string()), pa.array([v for _, v in pairs], pa.binary())],
        fields=list(list_type.value_type),
    )
    starts = pa.array(accumulate(map(len, headers), initial=0), pa.int32())
    return pa.ListArray.from_arrays(starts, entries, type=list_type)


def last_offsets(records: list[LandingRecord]) -> dict[tuple[str, int], int]:
    """The highest offset per topic partition of a consumed batch, archived or not (an erased record's
    position is passed like any other)."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        position = (record.topic, record.partition)
        last[position] = max(last.get(position, -1), record.offset)
    return last
