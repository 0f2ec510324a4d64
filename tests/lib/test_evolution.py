"""Which contract changes the tables follow in place (added, widened, removed fields) and which are
refused with the way forward (narrowed types, a changed key or sequence, a field made required)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from platform_assets.entity import ContractChangeError, contract_changes_refused, ensure_tables
from platform_assets.lib.contract import parse_contract
from platform_assets.lib.evolution import breaking_changes, identity_properties
from resources.lake import LakeResource, conform, is_widening, schema_change

pytestmark = pytest.mark.unit


def contract(**fields):
    base = {"id": {"nullable": False}, "ts": {"type": "timestamp"}, "v": {"type": "long"}, "score": {"type": "int"}}
    return parse_contract(
        {
            "name": "members",
            "source": {"format": "json", "topic": "members"},
            "key": ["id"],
            "sequence": "v",
            "event_time": "ts",
            "fields": {**base, **fields},
        },
        "contracts/members.yaml",
    )


def test_widening_keeps_every_value():
    assert is_widening(pa.int32(), pa.int64()) and is_widening(pa.float32(), pa.float64())
    assert is_widening(pa.decimal128(10, 2), pa.decimal128(12, 2))
    assert not is_widening(pa.int64(), pa.int32())
    assert not is_widening(pa.decimal128(10, 2), pa.decimal128(10, 3)), "fewer integer digits"
    assert not is_widening(pa.int32(), pa.string())


def test_schema_change_sorts_fields_by_what_the_table_can_do():
    stored = pa.schema([("id", pa.string()), ("score", pa.int32()), ("gone", pa.string()), ("n", pa.int64())])
    wanted = pa.schema([("id", pa.string()), ("score", pa.int64()), ("tier", pa.string()), ("n", pa.string())])
    change = schema_change(stored, wanted)
    assert [f.name for f in change.added] == ["tier"]
    assert [(old.name, new.type) for old, new in change.widened] == [("score", pa.int64())]
    assert [f.name for f in change.kept] == ["gone"]
    assert [(old.name, new.type) for old, new in change.incompatible] == [("n", pa.string())]


def test_rows_are_conformed_to_the_stored_layout():
    stored = pa.schema([("id", pa.string()), ("gone", pa.string()), ("score", pa.int64())])
    rows = pa.table({"id": ["a"], "score": pa.array([1], pa.int32())})
    assert conform(rows, stored).to_pylist() == [{"id": "a", "gone": None, "score": 1}]
    assert conform(rows, stored).schema == stored


def test_identity_changes_are_breaking():
    before = identity_properties(contract())
    assert breaking_changes({}, contract()) == [], "nothing recorded yet: nothing to break"
    assert breaking_changes(before, contract(tier={})) == []
    required = breaking_changes(before, contract(score={"type": "int", "nullable": False}))
    assert required == ["field `score` changed from nullable to nullable: false"]
    rekeyed = parse_contract({**_document(), "key": ["id", "score"]}, "contracts/members.yaml")
    assert breaking_changes(before, rekeyed) == ["key changed from [id] to [id,score]"]


def _document():
    return {
        "name": "members",
        "source": {"format": "json", "topic": "members"},
        "key": ["id"],
        "sequence": "v",
        "event_time": "ts",
        "fields": {"id": {}, "ts": {"type": "timestamp"}, "v": {"type": "long"}, "score": {"type": "int"}},
    }


def test_tables_follow_additive_and_widening_changes_in_place(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    v1 = contract()
    ensure_tables(lake, v1, ("raw", "current", "history"))
    lake.append("raw", "members", pa.table({"id": ["a"], "score": pa.array([7], pa.int32())}))
    v2 = contract(score={"type": "long"}, tier={})
    assert contract_changes_refused(lake, v2) is None
    ensure_tables(lake, v2, ("raw", "current", "history"))
    for layer in ("raw", "current", "history"):
        schema = lake.read(layer, "members").schema
        assert schema.field("score").type == pa.int64() and schema.field("tier").type == pa.string(), layer
    assert lake.read("raw", "members").select(["id", "score", "tier"]).to_pylist() == [
        {"id": "a", "score": 7, "tier": None}
    ]
    # A removed field stays as a column that is no longer filled; writes without it still land.
    v3 = contract(score={"type": "long"})
    ensure_tables(lake, v3, ("raw",))
    lake.append("raw", "members", pa.table({"id": ["b"], "score": pa.array([8], pa.int64())}))
    assert sorted(lake.read("raw", "members").column("tier").to_pylist(), key=str) == [None, None]


def test_breaking_changes_are_refused_naming_the_contract_field_and_migration(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    ensure_tables(lake, contract(), ("raw", "current", "history"))
    narrowed = contract(v={"type": "int"})
    refusal = contract_changes_refused(lake, narrowed)
    assert refusal is not None
    assert "contracts/members.yaml" in refusal and "`v`" in refusal and "int64 to int32" in refusal
    assert "python -m cli contracts migrate --entity members" in refusal
    with pytest.raises(ContractChangeError, match="`v` int64 -> int32"):
        ensure_tables(lake, narrowed, ("raw",))
    required = contract(score={"type": "int", "nullable": False})
    with pytest.raises(ContractChangeError, match=r"score.*nullable: false"):
        ensure_tables(lake, required, ("raw",))
