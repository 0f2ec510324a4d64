"""Property: applying raw partitions to `current` with the Spark MERGE, in any order and any number of
times, gives exactly the plain-Python reference model: newest change per key by (sequence, Kafka
position), deletes leave tombstones that older updates cannot revive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platform_assets.current import merge_spec
from platform_assets.lib import ordering
from platform_assets.lib.contract import parse_contract
from platform_assets.lib.decode import LandingRecord, decode_batch
from platform_assets.lib.tables import current_schema, raw_schema
from spark.cdc import changes_between, merge_into_current

CONTRACT = parse_contract(
    {
        "name": "things",
        "source": {"format": "json", "topics": {"create": "c", "update": "u", "delete": "d"}},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {"id": {}, "colour": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}},
    }
)
START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 4

change = st.tuples(
    st.sampled_from(["a", "b", "c"]),  # key
    st.sampled_from(["c", "u", "d"]),  # operation topic
    st.integers(1, 6),  # sequence: collisions are ties broken by Kafka position
    st.integers(0, HOURS - 1),  # event hour
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
    columns = [f.name for f in current_schema(CONTRACT)]
    return {r["id"]: tuple(r[c] for c in columns) for r in lake.read("current", "things").to_pylist()}


def apply_hours(spark, lake, hours: list[int]) -> None:
    for hour in hours:
        start = START + timedelta(hours=hour)
        changes = changes_between(spark, lake.uri("raw", "things"), start, start + timedelta(hours=1))
        merge_into_current(spark, changes, lake.uri("current", "things"), merge_spec(CONTRACT))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=st.lists(change, min_size=1, max_size=25),
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
    lake.create_if_missing("current", "things", current_schema(CONTRACT))

    apply_hours(spark, lake, list(order) + list(repeats))

    stored = current_state(lake)
    newest = ordering.newest_per_key(CONTRACT, rows)
    columns = [f.name for f in current_schema(CONTRACT) if f.name != "_deleted"]
    assert stored == {k[0]: (*(r[c] for c in columns), r["_op"] == "delete") for k, r in newest.items()}
    live = {k for k, row in stored.items() if not row[-1]}
    assert live == {k[0] for k in ordering.live_rows(CONTRACT, rows)}

    apply_hours(spark, lake, list(range(HOURS)))  # re-applying everything changes nothing
    assert current_state(lake) == stored


def test_a_delete_is_not_undone_by_an_older_update_arriving_later(spark, lake):
    created, deleted, late_update = ("a", "c", 1, 0, "red"), ("a", "d", 3, 1, "red"), ("a", "u", 2, 2, "blue")
    rows = raw_rows([created, deleted, late_update])
    lake.append("raw", "things", pa.Table.from_pylist(rows, raw_schema(CONTRACT)))
    lake.create_if_missing("current", "things", current_schema(CONTRACT))
    apply_hours(spark, lake, [0, 1, 2])
    [row] = lake.read("current", "things").to_pylist()
    assert row["_deleted"] is True and row["v"] == 3
