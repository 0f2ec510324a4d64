"""`raw_keys`: the event hours in which raw holds each key, so an erasure reads a person's hours of raw and
not every hour of the archive. It must name every hour raw holds a key in, from the version that
creates it on; an erasure trusts it only for the fields it has held that long."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from change_streams import PEOPLE
from hypothesis import given
from hypothesis import strategies as st

from platform_assets import erasure
from platform_assets.entity import ensure_tables, raw_keys_cover, replace_raw
from platform_assets.lib.contract import Contract, parse_contract
from platform_assets.lib.pii import pii_key
from platform_assets.lib.tables import hour_window_predicate, hours_predicate, raw_keys_rows, raw_schema

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)


def json_contract(name: str, **fields: dict) -> Contract:
    """A JSON contract like PEOPLE's (keyed by `id`, ordered by `v`, timed by `ts`), with `fields` besides."""
    given = {"id": {"nullable": False}, "ts": {"type": "timestamp"}, "v": {"type": "long"}, **fields}
    source = {"format": "json", "topic": name}
    return parse_contract(
        {"name": name, "source": source, "key": ["id"], "sequence": "v", "event_time": "ts", "fields": given}
    )


def raw_rows(hour: int, people: list[str], offset: int = 0) -> pa.Table:
    moment = START + timedelta(hours=hour)
    rows = [
        {"_op": "u", "id": person, "ts": moment, "v": offset + n, "_topic": "people", "_partition": 0}
        | {"_offset": offset + n, "_event_hour": moment}
        for n, person in enumerate(people)
    ]
    return pa.Table.from_pylist(rows, raw_schema(PEOPLE))


def test_each_distinct_key_of_an_hour_is_one_row_filed_under_its_day():
    rows = pa.concat_tables([raw_rows(0, ["a", "b", "a"]), raw_rows(25, ["a"], offset=3)])
    keys = raw_keys_rows(PEOPLE, rows).sort_by("_event_hour").to_pylist()
    assert [(row["id"], row["_event_hour"].hour, str(row["_event_date"])) for row in keys] == sorted(
        [("a", 0, "2026-01-01"), ("b", 0, "2026-01-01"), ("a", 1, "2026-01-02")], key=lambda row: row[2]
    )


OWNERS = json_contract("owners")
OWNED_PEOPLE = json_contract("people", owner={"subject": "owners"})


def owned_rows(named: list[tuple[str, str | None, int]]) -> pa.Table:
    """Raw rows of OWNED_PEOPLE: (person, owner or None, event hour after START) each."""
    return pa.Table.from_pylist(
        [
            {"_op": "u", "id": person, "owner": owner, "ts": START + timedelta(hours=hour), "v": n}
            | {"_topic": "people", "_partition": 0, "_offset": n, "_event_hour": START + timedelta(hours=hour)}
            for n, (person, owner, hour) in enumerate(named)
        ],
        raw_schema(OWNED_PEOPLE),
    )


def indexed_keys(keys: pa.Table) -> list[tuple]:
    return [(row["id"], row["owner"], row["_event_hour"]) for row in keys.to_pylist()]


def test_an_hour_decoded_again_adds_only_the_keys_the_index_does_not_hold_yet(lake):
    """The lag sensor has raw decode an hour again after every landing run (every few minutes): the index
    grows with the keys and hours raw holds, not with how often an hour was decoded. A subject a row does
    not name (null) is a key like any other: held once."""
    ensure_tables(lake, OWNED_PEOPLE, ("raw", "raw_keys"))
    window = hour_window_predicate("_event_hour", START, START + timedelta(hours=2))
    first_run = [("a", "o1", 0), ("b", None, 0)]
    replace_raw(lake, OWNED_PEOPLE, owned_rows(first_run), window)
    replace_raw(lake, OWNED_PEOPLE, owned_rows([*first_run, ("a", "o1", 0), ("c", None, 0), ("a", "o1", 1)]), window)
    replace_raw(lake, OWNED_PEOPLE, owned_rows([*first_run, ("c", None, 0), ("a", "o1", 1)]), window)
    hour = timedelta(hours=1)
    assert sorted(indexed_keys(lake.read("raw_keys", "people")), key=str) == sorted(
        [("a", "o1", START), ("a", "o1", START + hour), ("b", None, START), ("c", None, START)], key=str
    )
    assert lake.table("raw_keys", "people").version() == 2, "the third run, with no new key, commits nothing"
    [_, named_owner] = erasure.policy.erasure_targets(OWNERS, [OWNERS, OWNED_PEOPLE])
    predicate = named_owner.predicate(["o1"], pii_key())
    assert erasure._indexed_hours(lake, named_owner, predicate, "true") == {START, START + hour}


KEYS_OF_AN_HOUR = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from([None, "o1", "o2"]), st.integers(0, 2)), max_size=12
)


@given(KEYS_OF_AN_HOUR, KEYS_OF_AN_HOUR)
def test_keys_added_to_an_index_are_those_it_did_not_hold(first: list, second: list):
    indexed = raw_keys_rows(OWNED_PEOPLE, owned_rows(first))
    added = indexed_keys(raw_keys_rows(OWNED_PEOPLE, owned_rows(second), indexed))
    assert len(added) == len(set(added)), "each key of an hour once"
    assert not set(added) & set(indexed_keys(indexed))
    assert set(added) | set(indexed_keys(indexed)) == set(
        indexed_keys(raw_keys_rows(OWNED_PEOPLE, owned_rows(first + second)))
    )


def test_a_raw_table_older_than_the_index_is_indexed_whole_when_the_index_is_made(lake):
    ensure_tables(lake, PEOPLE, ("raw",))
    lake.append("raw", "people", raw_rows(0, ["a", "b"]))  # written before raw_keys existed
    lake.append("raw", "people", raw_rows(5, ["c"], offset=2))
    ensure_tables(lake, PEOPLE, ("raw", "raw_keys"))
    assert raw_keys_cover(lake, "people", ("id",))
    indexed = lake.read("raw_keys", "people").to_pylist()
    assert {(row["id"], row["_event_hour"]) for row in indexed} == {
        ("a", START),
        ("b", START),
        ("c", START + timedelta(hours=5)),
    }
    assert lake.table("raw_keys", "people").version() == 0, "the keys are in the commit that creates the index"


def test_an_erasure_reads_raw_and_the_index_only_in_the_hours_the_index_names_for_the_person(lake):
    ensure_tables(lake, PEOPLE, ("raw", "raw_keys"))
    for hour, people in ((0, ["a", "b"]), (1, ["b"]), (2, ["a", "c"])):
        moment = START + timedelta(hours=hour)
        replace_raw(lake, PEOPLE, raw_rows(hour, people, offset=hour * 10), hours_predicate({moment}))
    [target] = erasure.policy.erasure_targets(PEOPLE, [PEOPLE])
    named = target.predicate(["a"], pii_key())
    assert erasure._indexed_hours(lake, target, named, "true") == {START, START + timedelta(hours=2)}
    assert erasure._indexed_hours(lake, target, target.predicate(["nobody"], pii_key()), "true") == set()
    audit = erasure.erase(PEOPLE, ["a"], lake, [PEOPLE])
    assert audit["verified"] and lake.read("raw_keys", "people").column("id").to_pylist().count("a") == 0


def test_a_field_declared_a_subject_after_the_index_was_made_is_not_trusted_to_it(lake):
    """Rows indexed before the field joined `raw_keys` hold it null: an erasure of a person named there
    reads all of raw instead."""
    ensure_tables(lake, PEOPLE, ("raw", "raw_keys"))
    replace_raw(lake, PEOPLE, raw_rows(0, ["a"]), hours_predicate({START}))
    owners = json_contract("owners")
    later = json_contract("people", owner={"subject": "owners"})  # PEOPLE, with a field naming an owner
    ensure_tables(lake, later, ("raw", "raw_keys"))
    assert "owner" in lake.table("raw_keys", "people").schema().to_arrow().names
    assert raw_keys_cover(lake, "people", ("id",))
    assert not raw_keys_cover(lake, "people", ("owner",))
    [_, named_owner] = erasure.policy.erasure_targets(owners, [owners, later])
    predicate = named_owner.predicate(["o1"], pii_key())
    assert erasure._indexed_hours(lake, named_owner, predicate, "true") is None


def test_the_check_counts_the_index_again_only_in_the_hours_whose_files_changed(lake, monkeypatch):
    """After the deletes, the person's rows left in `raw_keys` can only be in files written since the
    erasure's first pass (which read all of it): its own deletes', or a raw run's that added the person's
    keys meanwhile, which the check still finds and the erasure removes. A day the person was never in is
    not read again, so the check costs the same however many days the index holds."""
    from resources.lake import LakeResource

    ensure_tables(lake, PEOPLE, ("raw", "raw_keys"))
    for hour, people in ((0, ["a", "b"]), (30, ["b"]), (50, ["a", "c"])):  # days 1, 2 and 3
        moment = START + timedelta(hours=hour)
        replace_raw(lake, PEOPLE, raw_rows(hour, people, offset=hour * 10), hours_predicate({moment}))
    counts: list[str] = []
    select = LakeResource.select

    def recorded(self, layer, entity, query, *others):
        if layer == "raw_keys" and "count(*)" in query:
            counts.append(query)
        return select(self, layer, entity, query, *others)

    monkeypatch.setattr(LakeResource, "select", recorded)
    audit = erasure.erase(PEOPLE, ["a"], lake, [PEOPLE])
    assert audit["verified"]
    [check] = counts
    assert "_event_hour" in check and "2026-01-02" not in check, "day 2, where `a` never was, is not read again"

    find_in_raw = erasure._find_in_raw

    def raw_run_indexes_a_in_day_2_after_the_lookup(*args, **kwargs):
        found = find_in_raw(*args, **kwargs)
        monkeypatch.setattr(erasure, "_find_in_raw", find_in_raw)
        lake.append("raw_keys", "people", raw_keys_rows(PEOPLE, raw_rows(31, ["b2"])))  # nothing of the person
        lake.append("raw_keys", "people", raw_keys_rows(PEOPLE, raw_rows(32, ["b"])))  # its raw commit yet to come
        return found

    monkeypatch.setattr(erasure, "_find_in_raw", raw_run_indexes_a_in_day_2_after_the_lookup)
    audit = erasure.erase(PEOPLE, ["b"], lake, [PEOPLE])
    assert audit["verified"]
    assert "b" not in lake.read("raw_keys", "people").column("id").to_pylist()
    assert json.loads(audit["rows_removed"])["raw_keys/people"] == 3  # hours 0 and 30, then 32
