"""Rows of the landing archive and the positions that make landing exactly-once.

Shared by the two writers of `landing/<entity>`: Kafka landing and full snapshot loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import accumulate, chain, repeat
from operator import itemgetter

import platform_native
import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib import columns
from platform_assets.lib.collector import collector_paused
from platform_assets.lib.contract import Contract
from platform_assets.lib.decode import SchemaLookup, landing_hours
from platform_assets.lib.records import HourRange, LandingBatch, LandingRecord
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
    records: Sequence[LandingRecord] | LandingBatch,
    schema_lookup: SchemaLookup | None,
    landed_at: datetime,
    first_hour: datetime,
) -> pa.Table:
    """The landing table rows of a batch; column by column, since this runs at Kafka speed.

    Each record is filed under an hourly partition that exists: `first_hour` (the first partition) to
    the hour of `landed_at` (see `decode.landing_hours`).
    """
    batch = records if isinstance(records, LandingBatch) else LandingBatch.of(records)
    column_type = {column.name: column.type for column in LANDING_SCHEMA}
    hours = landing_hours(contract, batch, schema_lookup, HourRange.landed(first_hour, landed_at))
    return pa.Table.from_arrays(
        [
            columns.repeated_strings(batch.topics),
            columns.int64s(batch.partitions, pa.int32()),
            columns.int64s(batch.offsets),
            columns.int64s(batch.timestamps_ms, pa.timestamp("ms", tz="UTC")).cast(column_type["timestamp"]),
            columns.binaries(batch.keys),
            columns.binaries(batch.values),
            _header_lists(batch.headers, column_type["headers"]),
            hours.cast(column_type["_event_hour"]),
            pa.repeat(columns.timestamp_scalar(landed_at, column_type["_landed_at"]), batch.size),
        ],
        schema=LANDING_SCHEMA,
    )


# How landing's columns are written (see `LakeResource.append`): a record's offset and Kafka time differ
# from record to record, and so do its key and payload, which no reader filters on.
UNIQUE_LANDING_COLUMNS = ("offset", "timestamp")
OPAQUE_LANDING_COLUMNS = ("key", "value")

# The landing columns decoding reads: all but the headers, which no format's decode looks at (reading
# them back as pairs was 1.2 s of a 714k-record raw hour).
DECODED_LANDING_COLUMNS = [column.name for column in LANDING_SCHEMA if column.name != "headers"]


def landing_records(table: pa.Table) -> list[LandingRecord]:
    """The landing table's rows back as the records they archive (without headers where `table` has none,
    as read with `DECODED_LANDING_COLUMNS`), column by column: a raw hour reads
    up to a million of them, and row by row (a dict and two datetimes each) that cost 20 s of a
    1M-event hour. The tuples are made by `tuple.__new__`: a named tuple's own constructor is a Python
    function, 3 s per million records. The records hold no cycle: the collector's walks over them were
    half of the time (3.7 s → 1.7 s for 714k records)."""
    if not table.num_rows:
        return []
    with collector_paused():
        return _records_of(table)


def _records_of(table: pa.Table) -> list[LandingRecord]:
    millis = table["timestamp"].cast(pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64())
    # A table version from before landing stamped `_landed_at` (`find_keys` reads every version) has none.
    landed_at = (
        columns.repeated_moments(table["_landed_at"]) if "_landed_at" in table.column_names else [None] * table.num_rows
    )
    fields = (
        table["topic"].to_pylist(),
        table["partition"].to_pylist(),
        table["offset"].to_pylist(),
        millis.to_pylist(),
        table["key"].to_pylist(),
        table["value"].to_pylist(),
        _header_pairs(table["headers"].combine_chunks()) if "headers" in table.column_names else [()] * table.num_rows,
        landed_at,
    )
    return list(map(tuple.__new__, repeat(LandingRecord), zip(*fields, strict=True)))


def _header_pairs(headers: pa.ListArray) -> list[tuple[tuple[str, bytes | None], ...]]:
    """Each row's headers as (name, bytes) pairs, read flat: one list of every pair, sliced per row."""
    lengths = pc.fill_null(pc.list_value_length(headers), 0).to_pylist()
    if not any(lengths):  # the usual table: no record has headers
        return [()] * len(headers)
    entries = headers.flatten()
    pairs = list(zip(entries.field("key").to_pylist(), entries.field("value").to_pylist(), strict=True))
    if len(set(lengths)) == 1:  # a producer that sets headers sets the same ones on every record: cut in C
        return list(zip(*[iter(pairs)] * lengths[0], strict=True))
    ends = list(accumulate(lengths))
    return [tuple(pairs[end - length : end]) for end, length in zip(ends, lengths, strict=True)]


def _header_lists(headers: list[tuple[tuple[str, bytes | None], ...]], list_type: pa.ListType) -> pa.Array:
    """Each record's headers as a list of key/value structs, built flat (most records have none). A
    producer sets the same few headers on record after record: each distinct list is built once and
    repeated by Arrow (one header list per record of a 1M-record hour was 1.5 s of its landing)."""
    if not any(headers):  # the usual batch: one pass of truth tests instead of one per header and record
        return pa.ListArray.from_arrays(
            pa.repeat(columns.int64s([0], pa.int32())[0], len(headers) + 1),
            _header_entries([], list_type),
            type=list_type,
        )
    if len(set(map(id, headers))) * 2 <= len(headers):  # shared lists (see `landing._headers`)
        return columns.repeated(headers, lambda distinct: _header_lists(distinct, list_type), key=id)
    if len(set(headers)) * 2 <= len(headers):
        return columns.repeated(headers, lambda distinct: _header_lists(distinct, list_type))
    pairs = list(chain.from_iterable(headers))
    starts = columns.int64s(list(accumulate(map(len, headers), initial=0)), pa.int32())
    return pa.ListArray.from_arrays(starts, _header_entries(pairs, list_type), type=list_type)


def _header_entries(pairs: list[tuple[str, bytes | None]], list_type: pa.ListType) -> pa.StructArray:
    return pa.StructArray.from_arrays(
        [columns.strings(list(map(itemgetter(0), pairs))), columns.binaries(list(map(itemgetter(1), pairs)))],
        fields=list(list_type.value_type),
    )


def offset_spans(records: Sequence[LandingRecord] | LandingBatch) -> dict[tuple[str, int], tuple[int, int]]:
    """The first and last offset per topic partition of a consumed batch (found in one pass of C: this
    runs for every batch of tens of thousands of records)."""
    batch = records if isinstance(records, LandingBatch) else LandingBatch.of(records)
    return platform_native.offset_spans(batch.topics, batch.partitions, batch.offsets)


def last_offsets(records: Sequence[LandingRecord] | LandingBatch) -> dict[tuple[str, int], int]:
    """The highest offset per topic partition of a consumed batch, archived or not (an erased record's
    position is passed like any other)."""
    return {position: last for position, (_, last) in offset_spans(records).items()}
