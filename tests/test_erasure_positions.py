"""An erasure finds a person's archived records through raw's columns and the landing position raw keeps
of each record: it decodes only the records raw does not hold (quarantined, not decoded yet), so its
cost does not grow with the archive; what it leaves behind is still proven by decoding everything."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from change_streams import PEOPLE

from platform_assets.entity import replace_raw
from platform_assets.erasure import erase, find_keys
from platform_assets.lib import erasure as policy
from platform_assets.lib.archive import landing_records, landing_rows
from platform_assets.lib.decode import decode_batch
from platform_assets.lib.erasure import erasure_targets
from platform_assets.lib.pii import pii_key, protect_columns
from platform_assets.lib.records import LandingRecord
from platform_assets.lib.tables import LANDING_SCHEMA, QUARANTINE_SCHEMA, hours_predicate, raw_schema

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["hour partitions", "unpartitioned"])
def lake(request, tmp_path):
    """The lake with landing, raw, quarantine and `raw_keys` as the assets make them (partitioned by event
    hour, raw's keys indexed), or as tables made before they were (no partitions, an index not known to
    cover raw): an erasure then joins every hour and reads all of raw, as it always did."""
    from platform_assets.entity import ensure_tables
    from resources.lake import LakeResource

    lake = LakeResource(root=str(tmp_path / "lake"))
    if request.param == "hour partitions":
        ensure_tables(lake, PEOPLE, ("landing", "raw", "quarantine", "raw_keys"))
    return lake


def land_hour(lake, hour: int, offsets: range, null_value_key: str | None = None) -> None:
    """Ten people's changes in one hour (offset o is about person k<o % 10>), plus a record with no value."""
    moment = START + timedelta(hours=hour)
    value = {"ts": str(moment)}
    records = [
        LandingRecord(
            "people", 0, o, 0, f"k{o % 10}".encode(), json.dumps({**value, "id": f"k{o % 10}", "v": o}).encode()
        )
        for o in offsets
    ]
    if null_value_key:
        records.append(LandingRecord("people", 0, offsets.stop, 0, null_value_key.encode(), None))
    lake.append("landing", "people", landing_rows(PEOPLE, records, None, START + timedelta(hours=3), START))


def decode_hour(lake, hour: int) -> None:
    """What the raw asset writes for the hour: its decoded rows and its quarantine."""
    start = START + timedelta(hours=hour)
    window = (pa.compute.field("_event_hour") >= start) & (pa.compute.field("_event_hour") < start + timedelta(hours=1))
    landed = landing_records(lake.read("landing", "people", window, LANDING_SCHEMA))
    batch = decode_batch(PEOPLE, landed, lambda fields: protect_columns(PEOPLE, fields, pii_key()))
    replace_raw(lake, PEOPLE, pa.Table.from_pylist(batch.rows, raw_schema(PEOPLE)), hours_predicate({start}))
    lake.append("quarantine", "people", pa.Table.from_pylist(batch.quarantined, QUARANTINE_SCHEMA))


def test_an_erasure_decodes_only_the_archived_records_raw_does_not_hold(lake, monkeypatch):
    land_hour(lake, 0, range(0, 20))
    land_hour(lake, 1, range(21, 41), null_value_key="k3")  # offset 41: no value, so quarantined
    decode_hour(lake, 0)
    decode_hour(lake, 1)
    land_hour(lake, 2, range(42, 52))  # landed, not decoded into raw yet
    held_by_raw = set(lake.read("raw", "people").column("_offset").to_pylist())
    assert len(held_by_raw) == 40

    decoded_offsets: list[int] = []
    decode = policy.decode

    def counted_decode(contract, record, schema_lookup=None):
        decoded_offsets.append(record.offset)
        return decode(contract, record, schema_lookup)

    monkeypatch.setattr(policy, "decode", counted_decode)
    audit = erase(PEOPLE, ["k3"], lake, [PEOPLE])
    monkeypatch.undo()

    assert audit["verified"]
    assert decoded_offsets and not set(decoded_offsets) & held_by_raw, "no record raw holds is decoded again"
    assert set(decoded_offsets) <= {41, *range(42, 52)}
    removed = json.loads(audit["rows_removed"])
    # k3: offsets 3, 13 (hour 0), 23, 33 and the valueless 41 (hour 1), 43 (hour 2, not decoded yet).
    assert removed["landing/people"] == 6 and removed["quarantine/people"] == 1 and removed["raw/people"] == 4
    assert b"k3" not in lake.read("landing", "people").column("key").to_pylist()
    assert find_keys(erasure_targets(PEOPLE, [PEOPLE]), ["k3"], lake) == {}, "the whole-archive proof agrees"


def test_an_erasure_that_keeps_old_versions_reports_them_as_still_held(lake):
    land_hour(lake, 0, range(0, 20))
    decode_hour(lake, 0)
    with pytest.raises(policy.ErasureError, match=r"raw@retained.*rerun with --retention-hours 0"):
        erase(PEOPLE, ["k3"], lake, [PEOPLE], retention_hours=24)
    assert find_keys(erasure_targets(PEOPLE, [PEOPLE]), ["k3"], lake), "older versions still hold the person"


def test_raw_rows_a_running_raw_run_commits_in_other_hours_during_the_erasure_are_erased_too(lake, monkeypatch):
    """The erasure deletes raw's rows in the hours where it found the person; a raw run that read the erasure
    list before it was appended may still commit the person in another hour: the check finds them there, and
    the erasure deletes them across every hour instead of failing."""
    from platform_assets import erasure

    land_hour(lake, 0, range(0, 20))
    land_hour(lake, 1, range(21, 41))
    decode_hour(lake, 0)
    find_in_raw = erasure._find_in_raw

    def raw_run_commits_hour_1_after_the_lookup(*args, **kwargs):
        found = find_in_raw(*args, **kwargs)
        monkeypatch.setattr(erasure, "_find_in_raw", find_in_raw)
        decode_hour(lake, 1)  # k3's changes at offsets 23 and 33 land in raw, in an hour the lookup did not see
        return found

    monkeypatch.setattr(erasure, "_find_in_raw", raw_run_commits_hour_1_after_the_lookup)
    audit = erase(PEOPLE, ["k3"], lake, [PEOPLE])

    assert audit["verified"]
    assert json.loads(audit["rows_removed"])["raw/people"] == 4  # offsets 3, 13 (hour 0), then 23, 33 (hour 1)
    assert "k3" not in lake.read("raw", "people").column("id").to_pylist()
    assert find_keys(erasure_targets(PEOPLE, [PEOPLE]), ["k3"], lake) == {}, "the whole-archive proof agrees"


def test_the_check_after_the_deletes_looks_again_only_at_the_hours_whose_files_changed(lake, monkeypatch):
    """The check reads raw and the archive only where files were added or removed since the erasure's
    first pass (the person's hours, which its deletes rewrote): its cost is that of the work, whatever the
    size of the archive, and it still finds what a concurrent run wrote there."""
    from platform_assets import erasure

    land_hour(lake, 0, range(0, 20))  # k3 at offsets 3 and 13
    land_hour(lake, 1, range(21, 23))  # k1, k2: nothing of k3 in hours 1 and 2
    land_hour(lake, 2, range(24, 26))
    for hour in range(3):
        decode_hour(lake, hour)
    passes: list = []
    find_in_raw = erasure._find_in_raw

    def recorded(*args, **kwargs):
        passes.append(find_in_raw(*args, **kwargs))
        return passes[-1]

    monkeypatch.setattr(erasure, "_find_in_raw", recorded)
    audit = erase(PEOPLE, ["k3"], lake, [PEOPLE])

    assert audit["verified"]
    first, check = passes
    assert first.scope is None and first.rows == 2, "the first pass looks at every hour"
    assert check.scope == {START}, "the check looks again only at hour 0, which the deletes rewrote"
    assert json.loads(audit["rows_removed"])["landing/people"] == 2
    assert find_keys(erasure_targets(PEOPLE, [PEOPLE]), ["k3"], lake) == {}, "the whole-archive proof agrees"


def test_the_files_a_vacuum_saw_gone_are_not_looked_up_again_but_those_removed_after_it_are(lake):
    """The check of older versions skips the files the erasure's vacuum deleted (a look-up each was its
    cost, growing with the table's history), and still reads a file a commit removed after that vacuum."""
    from platform_assets import erasure

    land_hour(lake, 0, range(0, 20))
    land_hour(lake, 1, range(21, 41))
    lake.delete_where("landing", "people", '"offset" = 5')  # a removed file, which the vacuum deletes
    gone = erasure._vacuum(lake, "landing", "people", retention_hours=0)
    assert len(gone) == 1
    lake.delete_where("landing", "people", '"offset" = 25')  # removed after the vacuum: still on disk

    every_row = pa.compute.field("offset") >= 0
    retained = lake.read_retained("landing", "people", every_row, gone)
    assert sorted(retained.column("offset").to_pylist()) == list(range(21, 41)), "hour 1's old file is read"
    table = lake.table("landing", "people")
    [removed_later] = set(table.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)) - gone
    assert lake.read_retained("landing", "people", every_row, gone | {removed_later}).num_rows == 0, (
        "a file named gone is not looked up"
    )


def test_an_erasure_reports_the_seconds_of_each_stage_without_storing_them(lake):
    """What an operator reads when an erasure takes long: each stage's seconds, summed over the tables."""
    land_hour(lake, 0, range(0, 20))
    decode_hour(lake, 0)
    started = time.perf_counter()
    audit = erase(PEOPLE, ["k3"], lake, [PEOPLE])
    elapsed = time.perf_counter() - started

    stages = audit["stage_seconds"]
    assert {"record request", "fence landing", "find", "delete landing", "delete raw", "vacuum", "verify", "audit"} <= (
        set(stages)
    )
    assert "raw committed meanwhile" not in stages, "no raw run committed during this erasure"
    rounding = 0.0005 * len(stages)  # each stage's seconds are rounded to the millisecond
    assert all(seconds >= 0 for seconds in stages.values()) and sum(stages.values()) <= elapsed + rounding
    stored = lake.read("audit", "erasures").to_pylist()
    assert [row["request_id"] for row in stored] == [audit["request_id"]] and "stage_seconds" not in stored[0]


def test_the_archive_is_joined_only_in_the_hours_where_raw_does_not_hold_every_record(lake):
    """Where landing has as many records in an hour as raw has rows (counted from the logs of tables
    partitioned by the event hour), every record has its raw row: the erasure joins the other hours only."""
    from platform_assets import erasure

    land_hour(lake, 0, range(0, 20))
    land_hour(lake, 1, range(21, 41), null_value_key="k3")  # quarantined
    land_hour(lake, 3, range(60, 70))
    for hour in (0, 1, 3):
        decode_hour(lake, hour)
    land_hour(lake, 2, range(42, 52))  # not decoded yet
    land_hour(lake, 3, range(70, 71))  # landed late, after its hour was decoded

    unsure = erasure._unsure_hours({layer: lake.file_hours(layer, "people") for layer in erasure.LOOKED_AT})
    partitioned = lake.table("landing", "people").metadata().partition_columns == ["_event_hour"]
    [valueless] = lake.read("landing", "people", pa.compute.field("offset") == 41).column("_event_hour").to_pylist()
    assert valueless == START, "a record without an event time is filed under the first hour"
    assert unsure == ({START + timedelta(hours=hour) for hour in (0, 2, 3)} if partitioned else None)
    audit = erase(PEOPLE, ["k3"], lake, [PEOPLE])
    assert audit["verified"]
    # k3: 3, 13 (hour 0), 23, 33 and the valueless 41 (hour 1), 43 (hour 2), 63 (hour 3).
    assert json.loads(audit["rows_removed"])["landing/people"] == 7
    assert find_keys(erasure_targets(PEOPLE, [PEOPLE]), ["k3"], lake) == {}, "the whole-archive proof agrees"


def test_an_erasure_stopped_between_raw_and_the_archive_is_completed_by_running_it_again(lake, monkeypatch):
    """Raw's rows go first: a record whose raw row is gone makes its hour one the next erasure joins, so a
    rerun still finds in the archive what the stopped one had not deleted there."""
    land_hour(lake, 0, range(0, 20))
    land_hour(lake, 1, range(21, 41))
    for hour in (0, 1):
        decode_hour(lake, hour)
    delete_where = lake.delete_where

    def stopped_before_the_archive(layer, entity, predicate):
        if layer == "landing":
            raise RuntimeError("the erasure's process was stopped")
        return delete_where(layer, entity, predicate)

    monkeypatch.setattr(type(lake), "delete_where", lambda self, *args: stopped_before_the_archive(*args))
    with pytest.raises(RuntimeError, match="stopped"):
        erase(PEOPLE, ["k3"], lake, [PEOPLE])
    monkeypatch.undo()
    assert "k3" not in lake.read("raw", "people").column("id").to_pylist(), "raw's rows went first"

    audit = erase(PEOPLE, ["k3"], lake, [PEOPLE])
    assert audit["verified"]
    assert json.loads(audit["rows_removed"])["landing/people"] == 4
    assert find_keys(erasure_targets(PEOPLE, [PEOPLE]), ["k3"], lake) == {}, "the whole-archive proof agrees"


def test_a_row_a_writer_commits_to_a_keyed_table_after_its_delete_is_found_by_the_check(lake, monkeypatch):
    """The check reads a keyed table (current, history, their tombstones) only in the files added since its
    delete began, since the delete rewrote every file that held the person: a writer that commits the person
    there beside the erasure adds such a file, so the erasure reports it instead of calling itself verified;
    run again, it removes the row."""
    land_hour(lake, 0, range(0, 20))
    decode_hour(lake, 0)
    state = pa.schema([("id", pa.string()), ("v", pa.int64())])
    lake.append("current", "people", pa.Table.from_pylist([{"id": f"k{n}", "v": n} for n in range(10)], state))
    lake.append("current", "people", pa.Table.from_pylist([{"id": "other", "v": 0}], state))  # left unchanged
    delete_where = lake.delete_where

    def beside_a_writer(layer, entity, predicate):
        deleted = delete_where(layer, entity, predicate)
        if layer == "current":  # a merge that planned before the erasure list grew commits the person back
            lake.append("current", "people", pa.Table.from_pylist([{"id": "k3", "v": 99}], state))
        return deleted

    monkeypatch.setattr(type(lake), "delete_where", lambda self, *args: beside_a_writer(*args))
    with pytest.raises(policy.ErasureError, match=r"'current/people': 1"):
        erase(PEOPLE, ["k3"], lake, [PEOPLE])
    monkeypatch.undo()

    audit = erase(PEOPLE, ["k3"], lake, [PEOPLE])
    assert audit["verified"] and json.loads(audit["rows_removed"])["current/people"] == 1
    assert sorted(lake.read("current", "people").column("id").to_pylist()) == sorted(
        [f"k{n}" for n in range(10) if n != 3] + ["other"]
    )
    assert find_keys(erasure_targets(PEOPLE, [PEOPLE]), ["k3"], lake) == {}, "the whole-archive proof agrees"
