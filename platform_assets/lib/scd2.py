"""SCD2 (slowly changing dimension, type 2) in plain Python: the reference the Spark code must match.

A key's state at time t is the newest change (by the contract's order, as in `ordering`) among its
changes that took effect at or before t; a delete, or a truncate, that is newest leaves no state. The
SCD2 rows are that state as intervals: one row per version, `valid_from` the moment the version took
effect, `valid_to` the moment the next version (or a delete) did, null while it is current. A change
that is older than one already in effect never shows, however late it arrives.

A change takes effect at its `valid_from`: its event time, or the start of the hour it is filed under
when that is not its event time's hour (a full snapshot row is filed under the hour of its download; a
change without an event time under the hour of its Kafka time). The hour of `valid_from` is therefore
always `_event_hour`, the hour by which `history` cuts its days, so the row valid at the end of day D
is history's row for D.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import groupby
from typing import Any

from platform_assets.lib.contract import Contract
from platform_assets.lib.ordering import DELETES, key_of, order_of
from platform_assets.lib.records import TRUNCATE, hour_floor

VALIDITY_COLUMNS = ("valid_from", "valid_to", "is_current")


def valid_from(contract: Contract, change: dict[str, Any]) -> datetime:
    """When a change takes effect (see the module docstring)."""
    moment: datetime | None = change[contract.event_time_column]
    hour: datetime = change["_event_hour"]
    return moment if moment is not None and hour_floor(moment) == hour else hour


def _chain(contract: Contract, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SCD2 rows of one key from its changes (truncates among them, named with the key)."""
    in_effect: list[tuple[datetime, dict[str, Any]]] = []  # (moment, newest change) where the newest changes
    newest: dict[str, Any] | None = None
    by_moment = sorted(changes, key=lambda change: valid_from(contract, change))
    for moment, arriving in groupby(by_moment, key=lambda change: valid_from(contract, change)):
        for change in arriving:
            if newest is None or order_of(contract, change) >= order_of(contract, newest):
                newest = change
        assert newest is not None
        if not in_effect or order_of(contract, in_effect[-1][1]) != order_of(contract, newest):
            in_effect.append((moment, newest))
    rows = []
    for index, (moment, change) in enumerate(in_effect):
        if change["_op"] in DELETES:
            continue
        valid_to = in_effect[index + 1][0] if index + 1 < len(in_effect) else None
        state = {column: value for column, value in change.items() if column != "_op"}
        rows.append({**state, "valid_from": moment, "valid_to": valid_to, "is_current": valid_to is None})
    return rows


def scd2_rows(contract: Contract, changes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every key's versions, as `scd2/<entity>` holds them: the change's columns but its operation, plus
    `valid_from`, `valid_to` and `is_current`. A truncate (a change without a key) counts as a delete of
    every key."""
    by_key: dict[tuple, list[dict[str, Any]]] = {}
    truncates = []
    for change in changes:
        if change["_op"] == TRUNCATE:
            truncates.append(change)
        else:
            by_key.setdefault(key_of(contract, change), []).append(change)
    rows = []
    for key, own in by_key.items():
        named = dict(zip(contract.key, key, strict=True))
        rows.extend(_chain(contract, own + [{**truncate, **named} for truncate in truncates]))
    return rows


def valid_at(rows: Iterable[dict[str, Any]], moment: datetime) -> list[dict[str, Any]]:
    """The rows in effect at `moment` (one per live key)."""
    return [
        row for row in rows if row["valid_from"] <= moment and (row["valid_to"] is None or moment < row["valid_to"])
    ]
