"""Every lake operation the platform uses, on each object store, through `LakeResource.from_env()`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from emulators import STORES

from resources.lake import LakeResource

pytestmark = pytest.mark.storage

HOUR = datetime(2026, 1, 1, 3, tzinfo=UTC)
LANDING_LIKE = pa.schema([("topic", pa.string()), ("offset", pa.int64()), ("value", pa.binary())])
HOURLY = pa.schema([("_event_hour", pa.timestamp("us", "UTC")), ("id", pa.string()), ("v", pa.int64())])


def batch(topic: str, offsets: range) -> pa.Table:
    return pa.Table.from_pylist(
        [{"topic": topic, "offset": o, "value": f"record {o}".encode()} for o in offsets], LANDING_LIKE
    )


def hour_rows(hour: datetime, ids: list[str], version: int) -> pa.Table:
    return pa.Table.from_pylist([{"_event_hour": hour, "id": i, "v": version} for i in ids], HOURLY)


def hour_predicate(hour: datetime) -> str:
    end = hour + timedelta(hours=1)
    return f"_event_hour >= '{hour:%Y-%m-%dT%H:%M:%SZ}' AND _event_hour < '{end:%Y-%m-%dT%H:%M:%SZ}'"


@pytest.mark.parametrize("object_lake", STORES, indirect=True)
def test_every_lake_operation_on_the_object_store(object_lake: LakeResource):
    lake = object_lake
    assert lake.table("landing", "things") is None
    assert lake.read("landing", "things", schema=LANDING_LIKE).num_rows == 0
    with pytest.raises(FileNotFoundError):
        lake.read("landing", "things")

    # Exactly-once landing: each append records the last landed offset in the same commit.
    app = "landing:things:t:0"
    assert lake.transaction_version("landing", "things", app) is None
    lake.append("landing", "things", batch("t", range(10)), app_transactions={app: 9})
    assert lake.transaction_version("landing", "things", app) == 9
    lake.append("landing", "things", batch("t", range(10, 25)), app_transactions={app: 24})
    assert lake.transaction_version("landing", "things", app) == 24
    assert lake.version("landing", "things") == 1
    tail = lake.read("landing", "things", pc.field("offset") >= 20)
    assert sorted(tail.column("offset").to_pylist()) == [20, 21, 22, 23, 24]
    assert lake.read("landing", "things").num_rows == 25

    # Hourly replaceWhere: a rerun of an hour replaces that hour only.
    other = HOUR + timedelta(hours=1)
    lake.replace_where("raw", "things", hour_rows(HOUR, ["a", "b"], 1), hour_predicate(HOUR))
    lake.replace_where("raw", "things", hour_rows(other, ["c"], 1), hour_predicate(other))
    lake.replace_where("raw", "things", hour_rows(HOUR, ["a"], 2), hour_predicate(HOUR))
    rows = sorted((r["id"], r["v"]) for r in lake.read("raw", "things").to_pylist())
    assert rows == [("a", 2), ("c", 1)]

    # create_if_missing: an empty, partitioned table once; later calls leave it alone.
    lake.create_if_missing("current", "things", HOURLY, partition_by=["id"])
    lake.create_if_missing("current", "things", HOURLY, partition_by=["id"])
    created = lake.table("current", "things")
    assert created is not None and created.version() == 0
    assert created.metadata().partition_columns == ["id"]
    assert lake.read("current", "things").schema == HOURLY


@pytest.mark.parametrize("object_lake", ["s3", "azure-abfss"], indirect=True)
def test_concurrent_appends_all_land(object_lake: LakeResource):
    """Commits are put-if-absent on the store: when two writers race for a version, the store refuses the
    second put (moto 412, Azurite 409 in their logs) and delta-rs retries on top of the winner instead of
    overwriting its commit. The race is not forced: this checks that nothing is ever lost."""
    lake, errors = object_lake, []
    lake.append("landing", "things", batch("t", range(1)))

    def writer(first: int) -> None:
        try:
            for start in range(first, first + 40, 10):
                lake.append("landing", "things", batch("t", range(start, start + 10)))
        except Exception as error:  # reported below, with the rows that went missing
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(first,)) for first in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    offsets = sorted(lake.read("landing", "things").column("offset").to_pylist())
    assert not errors and offsets == [0, *range(100, 140), *range(200, 240)], errors
    assert lake.version("landing", "things") == 8


def test_a_table_that_several_writers_create_at_once_is_created_once(tmp_path):
    """Runs of one entity that start together (CLI, UI, sensor) each create its tables if missing. One
    creation commits; the others find the table. A second creation committed as a later version would
    change the table's metadata under every append that read the first ("Metadata changed since last
    commit"): a concurrent landing run failed on it."""
    for attempt in range(10):
        root = str(tmp_path / f"lake-{attempt}")
        barrier = threading.Barrier(3)
        errors: list[Exception] = []

        def create(root: str = root, barrier: threading.Barrier = barrier, errors: list = errors) -> None:
            barrier.wait()
            try:
                LakeResource(root=root).create_if_missing("landing", "things", HOURLY, ["_event_hour"])
            except Exception as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=create) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert LakeResource(root=root).version("landing", "things") == 0, f"attempt {attempt}"
