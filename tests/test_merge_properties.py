"""Properties of the Spark merges against the plain-Python reference model (newest change per key by
(sequence, Kafka position); deletes leave tombstones that older updates cannot revive):

- applying raw partitions to `current`, in any order and any number of times, gives the reference,
  with live rows in `current` and tombstones beside it;
- `history` holds each day's live rows of the reference, whether the days are computed in one run or
  day by day, and a deleted key is absent from the day of its delete on.

Each property runs on Sail in both modes: `local` (one process, the embedded default) and `local-cluster`
(a driver and two workers that split every stage and shuffle over gRPC, as a cluster does)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from change_streams import THINGS, TRUNCATABLE
from helpers import sail_local_cluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platform_assets.entity import merge_spec
from platform_assets.lib import ordering
from platform_assets.lib.contract import parse_contract
from platform_assets.lib.decode import decode_batch
from platform_assets.lib.records import LandingRecord
from platform_assets.lib.tables import current_schema, history_schema, raw_schema
from spark.cdc import changes_between, history_days, merge_into_current, rebuild_current

pytestmark = pytest.mark.spark

CONTRACT = THINGS
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=["local", "local-cluster"])
def spark(request, spark) -> Iterator:
    """The session's embedded Sail (local mode), then a Sail server of this module in local-cluster mode."""
    if request.param == "local":
        yield spark
        return
    from resources.spark import SparkResource

    # The tombstones' rewrite pipelines the changes, their anti-joins and the write in one task region:
    # 26 tasks for the truncate stream, refused at 2 workers x 8 slots: so 2 x 16.
    with sail_local_cluster(worker_task_slots=16) as remote:
        session = SparkResource(remote=remote).session()
        yield session
        session.stop()


HOURS = 4
DAYS = 3


def changes(hours: int) -> st.SearchStrategy[tuple]:
    return st.tuples(
        st.sampled_from(["a", "b", "c"]),  # key
        st.sampled_from(["c", "u", "d"]),  # operation topic
        st.integers(1, 6),  # sequence: collisions are ties broken by Kafka position
        st.integers(0, hours - 1),  # event hour
        st.sampled_from(["red", "green", "blue"]),
    )


def raw_rows(stream: list[tuple]) -> list[dict]:
    """Decode a generated stream the way the raw layer does; duplicates are the same record twice."""
    records = []
    for offset, (key, topic, sequence, hour, colour) in enumerate(stream):
        moment = START + timedelta(hours=hour, minutes=offset % 60)
        value = {"id": key, "colour": colour, "ts": moment.isoformat(), "v": sequence}
        records.append(
            LandingRecord(topic, 0, offset, int(moment.timestamp() * 1000), key.encode(), json.dumps(value).encode())
        )
    return decode_batch(CONTRACT, records, lambda values: values).rows


def current_state(lake) -> dict:
    """Every key's stored row and whether it is a tombstone; a key is never both live and a tombstone."""
    columns = [f.name for f in current_schema(CONTRACT)]
    live = {r["id"]: (*(r[c] for c in columns), False) for r in lake.read("current", "things").to_pylist()}
    dead = {r["id"]: (*(r[c] for c in columns), True) for r in lake.read("current_tombstones", "things").to_pylist()}
    assert not live.keys() & dead.keys()
    return live | dead


def apply_hours(spark, lake, hours: list[int]) -> None:
    for hour in hours:
        start = START + timedelta(hours=hour)
        changes = changes_between(spark, lake.uri("raw", "things"), start, start + timedelta(hours=1))
        current_uri, tombstones_uri = lake.uri("current", "things"), lake.uri("current_tombstones", "things")
        merge_into_current(spark, changes, current_uri, tombstones_uri, merge_spec(CONTRACT))


def create_tables(lake) -> None:
    for layer in ("current", "current_tombstones"):
        lake.create_if_missing(layer, "things", current_schema(CONTRACT))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=st.lists(changes(HOURS), min_size=1, max_size=25),
    duplicates=st.lists(st.integers(0, 24), max_size=5),
    order=st.permutations(list(range(HOURS))),
    repeats=st.lists(st.integers(0, HOURS - 1), max_size=3),
)
def test_merge_matches_reference_in_any_order(spark, tmp_path_factory, stream, duplicates, order, repeats):
    from resources.lake import LakeResource

    stream = stream + [stream[i] for i in duplicates if i < len(stream)]
    rows = raw_rows(stream)
    lake = LakeResource(root=str(tmp_path_factory.mktemp("lake")))
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(CONTRACT)))
    create_tables(lake)

    apply_hours(spark, lake, list(order) + list(repeats))

    stored = current_state(lake)
    newest = ordering.newest_per_key(CONTRACT, rows)
    columns = [f.name for f in current_schema(CONTRACT)]
    assert stored == {k[0]: (*(r[c] for c in columns), r["_op"] == "delete") for k, r in newest.items()}
    live = {k for k, row in stored.items() if not row[-1]}
    assert live == {k[0] for k in ordering.live_rows(CONTRACT, rows)}

    apply_hours(spark, lake, list(range(HOURS)))  # re-applying everything changes nothing
    assert current_state(lake) == stored


def test_a_delete_is_not_undone_by_an_older_update_arriving_later(spark, lake):
    created, deleted, late_update = ("a", "c", 1, 0, "red"), ("a", "d", 3, 1, "red"), ("a", "u", 2, 2, "blue")
    rows = raw_rows([created, deleted, late_update])
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(CONTRACT)))
    create_tables(lake)
    apply_hours(spark, lake, [0, 1, 2])
    assert lake.read("current", "things").num_rows == 0  # readers see live rows only
    [tombstone] = lake.read("current_tombstones", "things").to_pylist()
    assert tombstone["v"] == 3


def test_a_rerun_repairs_a_merge_interrupted_between_its_two_commits(spark, lake):
    """A re-create applied to `current` whose tombstone was not yet removed: the key is in both tables."""
    created, deleted, recreated = ("a", "c", 1, 0, "red"), ("a", "d", 2, 0, "red"), ("a", "c", 3, 1, "blue")
    rows = raw_rows([created, deleted, recreated])
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(CONTRACT)))
    create_tables(lake)
    apply_hours(spark, lake, [0])
    interrupted = pa.Table.from_pylist([r for r in rows if r["v"] == 3], raw_schema(CONTRACT)).drop_columns(["_op"])
    lake.append("current", "things", interrupted.cast(current_schema(CONTRACT)))
    apply_hours(spark, lake, [1])
    current_state(lake)  # asserts the key is no longer both live and a tombstone
    [row] = lake.read("current", "things").to_pylist()
    assert (row["v"], row["colour"]) == (3, "blue")
    assert lake.read("current_tombstones", "things").num_rows == 0


def history_state(lake, layer: str) -> dict[tuple[date, str], tuple]:
    columns = [f.name for f in current_schema(CONTRACT)]
    return {(r["snapshot_date"], r["id"]): tuple(r[c] for c in columns) for r in lake.read(layer, "things").to_pylist()}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=st.lists(changes(DAYS * 24), min_size=1, max_size=25))
def test_history_matches_reference_computed_at_once_or_day_by_day(spark, tmp_path_factory, stream):
    from resources.lake import LakeResource

    rows = raw_rows(stream)
    lake = LakeResource(root=str(tmp_path_factory.mktemp("lake")))
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(CONTRACT)))
    for layer in ("history", "history_tombstones"):
        lake.create_if_missing(layer, "things", history_schema(CONTRACT), partition_by=["snapshot_date"])
    uris = lake.uri("history", "things"), lake.uri("history_tombstones", "things"), lake.uri("raw", "things")
    days = [START.date() + timedelta(days=d) for d in range(DAYS)]
    columns = [f.name for f in current_schema(CONTRACT)]
    expected = {
        (day, key[0]): tuple(row[c] for c in columns)
        for day in days
        for key, row in ordering.history_day(CONTRACT, rows, day).items()
    }

    counts = history_days(spark, *uris, days[0], days[-1], merge_spec(CONTRACT))
    at_once = history_state(lake, "history")
    assert at_once == expected
    assert counts == {day.isoformat(): sum(1 for d, _ in expected if d == day) for day in days}
    tombstones = history_state(lake, "history_tombstones")
    assert tombstones == {
        (day, key[0]): tuple(row[c] for c in columns)
        for day in days
        for key, row in ordering.newest_per_key(
            CONTRACT, (r for r in rows if r["ts"] < ordering.end_of_day(day))
        ).items()
        if row["_op"] == "delete"
    }

    for day in days:  # the daily partitions, each recomputing the day before it as the asset does
        history_days(spark, *uris, max(days[0], day - timedelta(days=1)), day, merge_spec(CONTRACT))
    assert history_state(lake, "history") == expected
    assert history_state(lake, "history_tombstones") == tombstones


def test_tombstones_expire_after_the_contracts_retention(spark, lake):
    """Kept for `tombstone_retention_days` after the delete's event time, in current and in history;
    past it, an older change arriving late can bring the key back (the documented price)."""
    spec = dataclasses.replace(merge_spec(CONTRACT), tombstone_retention_days=1)
    stream = [
        ("a", "c", 1, 0, "red"),
        ("a", "d", 3, 1, "red"),  # deleted on day 1
        ("b", "c", 1, 2, "red"),
        ("b", "d", 3, 30, "red"),  # deleted on day 2
        ("a", "u", 2, 50, "blue"),  # older than a's delete, arriving on day 3
    ]
    rows = raw_rows(stream)
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(CONTRACT)))
    create_tables(lake)
    current_uri, tombstones_uri, raw_uri = (
        lake.uri(layer, "things") for layer in ("current", "current_tombstones", "raw")
    )

    def apply(first_hour: int, last_hour: int) -> dict:
        start, end = START + timedelta(hours=first_hour), START + timedelta(hours=last_hour + 1)
        changes = changes_between(spark, raw_uri, start, end)
        return merge_into_current(spark, changes, current_uri, tombstones_uri, spec, as_of=end)

    assert apply(0, 2)["tombstones_expired"] == 0
    assert {r["id"] for r in lake.read("current_tombstones", "things").to_pylist()} == {"a"}
    assert apply(3, 30)["tombstones_expired"] == 1  # a's delete is more than a day before day 2 06:00
    assert {r["id"] for r in lake.read("current_tombstones", "things").to_pylist()} == {"b"}
    apply(31, 50)
    assert {(r["id"], r["v"]) for r in lake.read("current", "things").to_pylist()} == {("a", 2)}
    # A full refresh decides by sequence over every change, so the revived key is deleted again.
    every_change = spark.read.format("delta").load(raw_uri)
    rebuilt = rebuild_current(spark, every_change, current_uri, tombstones_uri, spec, as_of=START + timedelta(hours=51))
    assert rebuilt["tombstones_expired"] == 1 and lake.read("current", "things").num_rows == 0
    assert {r["id"] for r in lake.read("current_tombstones", "things").to_pylist()} == {"b"}

    for layer in ("history", "history_tombstones"):
        lake.create_if_missing(layer, "things", history_schema(CONTRACT), partition_by=["snapshot_date"])
    days = [START.date() + timedelta(days=d) for d in range(3)]
    history_days(
        spark, lake.uri("history", "things"), lake.uri("history_tombstones", "things"), raw_uri, days[0], days[-1], spec
    )
    assert set(history_state(lake, "history_tombstones")) == {(days[0], "a"), (days[1], "b")}
    assert set(history_state(lake, "history")) == {(days[0], "b"), (days[2], "a")}


def test_envelope_positions_order_the_merges_nulls_first(spark, lake):
    """SQL Server snapshot rows have no change LSN: they come before every streamed change of the same
    commit LSN, in `current` (whatever order the hours are applied in) and in `history`, as in the reference."""
    from debezium_envelopes import Table, column

    contract = parse_contract(
        {
            "name": "things",
            "source": {"format": "debezium", "topic": "redislabs.dbo.things"},
            "key": ["id"],
            "sequence": ["source.commit_lsn", "source.change_lsn", "source.event_serial_no"],
            "event_time": "source.ts_ms",
            "fields": {"id": {"type": "int"}, "colour": {}, "price": {"type": "decimal(20, 4)"}},
        }
    )
    columns = [column("id", "int32", optional=False), column("colour", "string"), column("price", "string")]
    table = Table("sqlserver", columns, table="things")
    commit = "0000003a:00002f50:0005"
    events = [  # (hour, key, colour, change_lsn, serial)
        (1, 1, "streamed", "0000003a:00002f50:0002", 2),
        (0, 1, "snapshot", None, None),
        (2, 1, "snapshot", None, None),  # the snapshot sent again later: still older than the update
        (0, 2, "snapshot", None, None),
        (1, 2, "again", None, None),  # equal positions: the later Kafka record wins
    ]
    records = [
        LandingRecord(
            table.name_prefix,
            0,
            offset,
            int((START + timedelta(hours=hour)).timestamp() * 1000),
            None,
            table.change(
                "r" if lsn is None else "u",
                None,
                {"id": key, "colour": colour, "price": f"98765432109.{offset:04d}"},
                int((START + timedelta(hours=hour, minutes=offset)).timestamp() * 1000),
                commit_lsn=commit,
                change_lsn=lsn,
                event_serial_no=serial,
            ),
        )
        for offset, (hour, key, colour, lsn, serial) in enumerate(events)
    ]
    rows = decode_batch(contract, records, lambda values: values).rows
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(contract)))
    for layer in ("current", "current_tombstones"):
        lake.create_if_missing(layer, "things", current_schema(contract))
    for layer in ("history", "history_tombstones"):
        lake.create_if_missing(layer, "things", history_schema(contract), partition_by=["snapshot_date"])
    spec = merge_spec(contract)
    for hour in (2, 1, 0, 1):
        start = START + timedelta(hours=hour)
        changes = changes_between(spark, lake.uri("raw", "things"), start, start + timedelta(hours=1))
        merge_into_current(
            spark, changes, lake.uri("current", "things"), lake.uri("current_tombstones", "things"), spec
        )
    expected = {k[0]: r["colour"] for k, r in ordering.live_rows(contract, rows).items()}
    assert expected == {1: "streamed", 2: "again"}
    assert {r["id"]: r["colour"] for r in lake.read("current", "things").to_pylist()} == expected
    # a decimal column stays exact through the MERGE
    assert {r["id"]: r["price"] for r in lake.read("current", "things").to_pylist()} == {
        1: Decimal("98765432109.0000"),
        2: Decimal("98765432109.0004"),
    }
    uris = lake.uri("history", "things"), lake.uri("history_tombstones", "things"), lake.uri("raw", "things")
    history_days(spark, *uris, START.date(), START.date(), spec)
    day = {r["id"]: r["colour"] for r in lake.read("history", "things").to_pylist()}
    assert day == {k[0]: r["colour"] for k, r in ordering.history_day(contract, rows, START.date()).items()}


@pytest.mark.xfail(strict=True, reason="Sail 0.7.2 reads Delta decimals of more than 16 digits through a double")
def test_decimals_of_more_than_sixteen_digits_stay_exact(spark, lake):
    schema = pa.schema([("price", pa.decimal128(20, 4))])
    lake.append("raw", "money", pa.Table.from_pylist([{"price": Decimal("12345678901234.0004")}], schema))
    assert lake.read("raw", "money").to_pylist() == [{"price": Decimal("12345678901234.0004")}]  # delta-rs: exact
    [row] = spark.read.format("delta").load(lake.uri("raw", "money")).collect()
    assert row["price"] == Decimal("12345678901234.0004")


TRUNCATED = TRUNCATABLE


def truncate_stream() -> list[dict]:
    """Raw rows of a PostgreSQL table truncated at LSN 500 (hour 1), with a change older than the
    truncate arriving only in hour 2 for a key seen nowhere else, and changes after it."""
    from debezium_envelopes import Table, column, truncate

    table = Table("postgresql", [column("id", "int32", optional=False), column("colour", "string")], table="things")
    events = [  # (hour, lsn, key or None for the truncate, op, colour)
        (0, 100, 1, "c", "red"),
        (0, 110, 2, "c", "red"),
        (0, 120, 3, "c", "red"),
        (0, 130, 3, "d", None),
        (1, 500, None, "t", None),
        (1, 600, 2, "c", "blue"),
        (2, 150, 4, "c", "late"),  # older than the truncate: beaten although key 4 was never seen
        (2, 700, 5, "c", "green"),
    ]
    records = []
    for offset, (hour, lsn, key, op, colour) in enumerate(events):
        at = int((START + timedelta(hours=hour, minutes=lsn // 100)).timestamp() * 1000)
        if op == "t":
            value = truncate(table, at, lsn=lsn)
        else:
            row = {"id": key, "colour": colour}
            value = table.change(op, row if op == "d" else None, None if op == "d" else row, at, lsn=lsn)
        records.append(
            LandingRecord("pg.public.things", 0, offset, at, None if key is None else table.key(id=key), value)
        )
    batch = decode_batch(TRUNCATED, records, lambda values: values)
    assert not batch.quarantined and not batch.skipped
    return batch.rows


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 0, 2, 1]])
def test_a_truncate_deletes_every_older_key_in_current_and_history_as_the_reference(spark, tmp_path, order):
    from resources.lake import LakeResource

    rows = truncate_stream()
    lake = LakeResource(root=str(tmp_path / "lake"))
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(TRUNCATED)))
    for layer in ("current", "current_tombstones"):
        lake.create_if_missing(layer, "things", current_schema(TRUNCATED))
    spec = merge_spec(TRUNCATED)
    for hour in order:
        start = START + timedelta(hours=hour)
        changes = changes_between(spark, lake.uri("raw", "things"), start, start + timedelta(hours=1))
        merge_into_current(
            spark, changes, lake.uri("current", "things"), lake.uri("current_tombstones", "things"), spec
        )
    columns = [f.name for f in current_schema(TRUNCATED)]
    expected = {
        k[0]: (*(r[c] for c in columns), r["_op"] in ordering.DELETES)
        for k, r in ordering.newest_per_key(TRUNCATED, rows).items()
    }
    live = {r["id"]: (*(r[c] for c in columns), False) for r in lake.read("current", "things").to_pylist()}
    dead = {r["id"]: (*(r[c] for c in columns), True) for r in lake.read("current_tombstones", "things").to_pylist()}
    assert live | dead == expected and len(dead) == lake.read("current_tombstones", "things").num_rows
    assert {k: v[1] for k, v in live.items()} == {2: "blue", 5: "green"}
    assert dead[1][columns.index("_source_lsn")] == 500  # deleted at the truncate's position

    rebuild_current(
        spark,
        spark.read.format("delta").load(lake.uri("raw", "things")),
        lake.uri("current", "things"),
        lake.uri("current_tombstones", "things"),
        spec,
    )
    assert {r["id"] for r in lake.read("current", "things").to_pylist()} == {2, 5}

    for layer in ("history", "history_tombstones"):
        lake.create_if_missing(layer, "things", history_schema(TRUNCATED), partition_by=["snapshot_date"])
    uris = lake.uri("history", "things"), lake.uri("history_tombstones", "things"), lake.uri("raw", "things")
    history_days(spark, *uris, START.date(), START.date(), spec)
    day = {r["id"]: r["colour"] for r in lake.read("history", "things").to_pylist()}
    assert day == {k[0]: r["colour"] for k, r in ordering.history_day(TRUNCATED, rows, START.date()).items()}
    assert day == {2: "blue", 5: "green"}
