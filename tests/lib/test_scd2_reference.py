"""The SCD2 reference against a brute-force definition: at every moment, the rows in effect are the
newest change per key among those in effect by then (`ordering.live_rows`), every row is one version
(no interval split in two, no gap), and at the end of each day they are history's rows for that day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from change_streams import START, THINGS, TRUNCATABLE, stream
from hypothesis import given, settings

from platform_assets.lib import ordering
from platform_assets.lib.contract import Contract
from platform_assets.lib.scd2 import VALIDITY_COLUMNS, scd2_rows, valid_at, valid_from

pytestmark = pytest.mark.unit

DAYS = 3
INSTANT = timedelta(microseconds=1)


def state(contract: Contract, rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Rows by key, without operation and validity: what a version holds."""
    by_key = {}
    for row in rows:
        key = ordering.key_of(contract, row)
        assert key not in by_key, f"two rows of {key} in effect at once"
        by_key[key] = {c: v for c, v in row.items() if c not in ("_op", *VALIDITY_COLUMNS)}
    return by_key


def assert_matches_brute_force(contract: Contract, changes: list[dict[str, Any]]) -> None:
    rows = scd2_rows(contract, changes)
    moments = sorted({valid_from(contract, change) for change in changes})
    for moment in [*moments, *(m - INSTANT for m in moments)]:
        in_effect = [change for change in changes if valid_from(contract, change) <= moment]
        expected = state(contract, list(ordering.live_rows(contract, in_effect).values()))
        assert state(contract, valid_at(rows, moment)) == expected, moment
    for row in rows:
        assert row["valid_from"] in moments and row["valid_to"] in (*moments, None)
        assert row["valid_to"] is None or row["valid_from"] < row["valid_to"]
        assert row["is_current"] == (row["valid_to"] is None)
    for row in rows:  # a version followed at once by another row of its key: a different change
        following = [
            other
            for other in rows
            if ordering.key_of(contract, other) == ordering.key_of(contract, row)
            and other["valid_from"] == row["valid_to"]
        ]
        assert all(ordering.order_of(contract, other) != ordering.order_of(contract, row) for other in following)
    for day in (START.date() + timedelta(days=d) for d in range(DAYS)):
        history = ordering.history_day(contract, changes, day)
        end_of_day = state(contract, valid_at(rows, ordering.end_of_day(day) - INSTANT))
        assert end_of_day == state(contract, list(history.values())), day


@settings(max_examples=300, deadline=None)
@given(changes=stream(THINGS, DAYS * 24))
def test_reference_matches_brute_force(changes):
    assert_matches_brute_force(THINGS, changes)


@settings(max_examples=300, deadline=None)
@given(changes=stream(TRUNCATABLE, DAYS * 24))
def test_reference_matches_brute_force_with_truncates(changes):
    assert_matches_brute_force(TRUNCATABLE, changes)


def change(op: str, sequence: int, minute: int, colour: str = "red", offset: int | None = None) -> dict[str, Any]:
    moment = START + timedelta(minutes=minute)
    return {
        "_op": op,
        "id": "a",
        "colour": colour,
        "ts": moment,
        "v": sequence,
        "_extra": None,
        "_topic": "changes",
        "_partition": 0,
        "_offset": sequence if offset is None else offset,
        "_kafka_timestamp": moment,
        "_event_hour": moment.replace(minute=0),
    }


def intervals(rows: list[dict[str, Any]]) -> list[tuple]:
    return sorted((r["colour"], r["valid_from"] - START, r["valid_to"] and r["valid_to"] - START) for r in rows)


def test_a_late_change_lands_in_its_interval_and_a_delete_closes_the_last():
    hour = timedelta(hours=1)
    created, updated = change("create", 1, 0, "red"), change("update", 3, 120, "green")
    deleted = change("delete", 4, 180)
    late = change("update", 2, 60, "blue", offset=9)  # between the two, arriving after the delete
    duplicate = dict(late)
    assert intervals(scd2_rows(THINGS, [created, updated, deleted, late, duplicate])) == [
        ("blue", hour, 2 * hour),
        ("green", 2 * hour, 3 * hour),
        ("red", timedelta(0), hour),
    ]


def test_a_change_older_than_one_already_in_effect_never_shows():
    """Sequence 2 takes effect at 01:00, after sequence 3 took effect at 00:30: 3 stays in effect."""
    rows = scd2_rows(THINGS, [change("create", 3, 30, "red"), change("update", 2, 60, "blue")])
    assert intervals(rows) == [("red", timedelta(minutes=30), None)]
