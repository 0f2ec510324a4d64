"""Generated raw change streams for the SCD2 properties: late and out-of-order changes, colliding
sequences, null positions, deletes, truncates (for a contract ordered by the source position), changes
filed under another hour than their event time's (as full snapshot rows are), and duplicates (the same
record, at the same Kafka position, decoded twice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from platform_assets.lib.contract import Contract, parse_contract
from platform_assets.lib.records import TRUNCATE, hour_floor
from platform_assets.lib.tables import raw_schema

START = datetime(2026, 1, 1, tzinfo=UTC)

THINGS = parse_contract(
    {
        "name": "things",
        "source": {"format": "json", "topics": {"create": "c", "update": "u", "delete": "d"}},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {"id": {}, "colour": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
    }
)
# One person per key, for the erasure tests.
PEOPLE = parse_contract(
    {
        "name": "people",
        "source": {"format": "json", "topic": "people"},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {"id": {"nullable": False}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
    }
)
TRUNCATABLE = parse_contract(
    {
        "name": "things",
        "source": {"format": "debezium", "topic": "pg.public.things"},
        "key": ["id"],
        "sequence": "source.lsn",
        "event_time": "source.ts_ms",
        "fields": {"id": {"type": "int"}, "colour": {}},
    }
)


def change(contract: Contract, hours: int) -> st.SearchStrategy[tuple]:
    operations = ["create", "update", "delete"] + ([TRUNCATE] if contract.orders_by_source_position else [])
    return st.tuples(
        st.sampled_from([1, 2, 3]),  # key
        st.sampled_from(operations),
        st.one_of(st.none(), st.integers(1, 6)),  # sequence: collisions are ties broken by Kafka position
        st.integers(0, hours * 60 - 1),  # event time, in minutes from START
        st.one_of(st.none(), st.integers(0, hours - 1)),  # filed under this hour instead of its event time's
        st.sampled_from(["red", "green", "blue"]),
    )


def stream(contract: Contract, hours: int, max_size: int = 25) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Raw rows, with some of them repeated as duplicates."""
    return st.tuples(
        st.lists(change(contract, hours), min_size=1, max_size=max_size),
        st.lists(st.integers(0, max_size - 1), max_size=5),
    ).map(lambda drawn: raw_rows(contract, *drawn))


def raw_rows(contract: Contract, changes: list[tuple], duplicates: list[int]) -> list[dict[str, Any]]:
    columns = [f.name for f in raw_schema(contract)]
    key_is_text = contract.field(contract.key[0]).type == "string"
    rows = []
    for offset, (key, operation, sequence, minute, filed_hour, colour) in enumerate(changes):
        moment = START + timedelta(minutes=minute)
        truncate = operation == TRUNCATE
        values = {
            "_op": operation,
            contract.key[0]: None if truncate else (str(key) if key_is_text else key),
            "colour": None if truncate else colour,
            contract.sequence_columns[0]: sequence,
            contract.event_time_column: moment,
            "_topic": "changes",
            "_partition": 0,
            "_offset": offset,
            "_kafka_timestamp": moment,
            "_event_hour": hour_floor(moment) if filed_hour is None else START + timedelta(hours=filed_hour),
        }
        rows.append({column: values.get(column) for column in columns})
    return rows + [dict(rows[i]) for i in duplicates if i < len(rows)]
