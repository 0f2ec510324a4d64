"""The merge rules of `current` and `history`, in plain Python: the reference the Spark code must match.

Changes of one key are totally ordered by the contract's sequence (row fields or envelope positions such
as `_source_lsn`; a null position comes before every known one), then by Kafka position; the newest
change wins, and a delete wins like any other change, leaving a tombstone so that an older update that
arrives later cannot bring the key back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from platform_assets.lib.contract import Contract
from platform_assets.lib.records import TRUNCATE

DELETES = ("delete", TRUNCATE)

# Kafka position columns that break ties between changes with the same sequence.
TIE_BREAK_COLUMNS = ("_kafka_timestamp", "_topic", "_partition", "_offset")


def order_columns(contract: Contract) -> tuple[str, ...]:
    return (*contract.sequence_columns, *TIE_BREAK_COLUMNS)


def order_of(contract: Contract, row: dict[str, Any]) -> tuple[Any, ...]:
    """Nulls first, as Spark sorts them in ascending order."""
    return tuple((row[column] is not None, row[column]) for column in order_columns(contract))


def key_of(contract: Contract, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[column] for column in contract.key)


def newest_per_key(contract: Contract, changes: Iterable[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Newest change per key, tombstones included. Truncates have no key: the newest of them (under
    the all-null key) deletes every key whose newest change is older, at its own position."""
    newest: dict[tuple, dict[str, Any]] = {}
    for change in changes:
        key = key_of(contract, change)
        held = newest.get(key)
        if held is None or order_of(contract, change) >= order_of(contract, held):
            newest[key] = change
    truncate = newest.get(tuple(None for _ in contract.key))
    if truncate is None:
        return newest
    return {
        key: {**truncate, **dict(zip(contract.key, key, strict=True))}
        if order_of(contract, row) < order_of(contract, truncate)
        else row
        for key, row in newest.items()
    }


def live_rows(contract: Contract, changes: Iterable[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """The `current` table as readers see it: the newest state of every key whose newest change is not
    a delete (or a truncate)."""
    return {key: row for key, row in newest_per_key(contract, changes).items() if row["_op"] not in DELETES}


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def history_day(contract: Contract, changes: Iterable[dict[str, Any]], day: date) -> dict[tuple, dict[str, Any]]:
    """Day D of `history`: for every key alive at the end of D, its newest state with event time before
    then (the event hour: the event time's, or the Kafka time's for a change without one)."""
    cutoff = end_of_day(day)
    return live_rows(contract, (c for c in changes if c["_event_hour"] < cutoff))
