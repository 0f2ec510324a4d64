"""Right to erasure: a customer erased after a multi-day run is found nowhere (not in their own
tables, not in the card transactions that name them, not in old table versions, not counted by the
marts) and not after a rebuild from the archive or a replay of their events from Kafka."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from dagster import RunRequest, build_run_status_sensor_context
from helpers import mart_rows, run

from platform_assets.erasure import find_keys
from platform_assets.lib.erasure import KEYED_LAYERS, erasure_targets
from platform_assets.lib.tables import AUDIT_SCHEMA
from platform_assets.partitions import hour_key
from simulator.source import Rates

pytestmark = [pytest.mark.broker, pytest.mark.spark, pytest.mark.dbt]

START = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 36


@pytest.fixture(scope="module")
def stack(platform_stack):
    stack = platform_stack(Rates(creates=5, updates=8, deletes=1, transactions=6, late_share=0.02), seed=9)
    for hour in range(HOURS):
        stack.publish(stack.source.hour(START + timedelta(hours=hour)))
    stack.publish(stack.source.flush_late())
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success
    assert run(
        stack.defs, stack.instance, "hourly_job", hour_key(START), hour_key(START + timedelta(hours=HOURS - 1))
    ).success
    assert run(stack.defs, stack.instance, "daily_job", "2026-01-01", "2026-01-02").success
    return stack


def _marts(stack) -> tuple[dict, dict]:
    active = dict(mart_rows(stack.lake, "customer_kpis_daily", "select day, active_customers from marts"))
    spend = dict(mart_rows(stack.lake, "card_spend_hourly", "select hour, transactions from marts"))
    return active, spend


def test_an_erased_customer_is_found_nowhere_even_after_a_rebuild_and_a_replay(stack):
    contracts = {c.name: c for c in stack.contracts}
    targets = erasure_targets(contracts["customers"], stack.contracts)
    assert [t.contract.name for t in targets] == ["customers", "card_transactions"]
    changes = [e for e in stack.source.changes if e.topic.startswith("customer-")]
    paid = Counter(t["customer_id"] for t in stack.source.transactions)
    person = next(
        e.key for e in changes if e.topic == "customer-update" and e.key in stack.source.customers and paid[e.key]
    )
    found_before = find_keys(targets, [person], stack.lake)
    assert any(k.startswith("current/customers@") for k in found_before), "the test customer must exist"
    assert any(k.startswith("current/card_transactions@") for k in found_before), "and must have paid"
    alive_days = {
        r["snapshot_date"] for r in stack.lake.read("history", "customers").to_pylist() if r["customer_id"] == person
    }
    versions = sum(1 for r in stack.lake.read("scd2", "customers").to_pylist() if r["customer_id"] == person)
    assert versions >= 2, "the test customer must have an older version in scd2 as well as the current one"
    own_spend = Counter(
        r["occurred_at"].replace(minute=0, second=0, microsecond=0)
        for r in stack.lake.read("current", "card_transactions").to_pylist()
        if r["customer_id"] == person
    )
    active_before, spend_before = _marts(stack)

    erased = stack.defs.resolve_job_def("erasure_job").execute_in_process(
        instance=stack.instance,
        run_config={"ops": {"erase_keys": {"config": {"entity": "customers", "keys": [person], "retention_hours": 0}}}},
    )
    assert erased.success
    assert find_keys(targets, [person], stack.lake) == {}

    [audit] = stack.lake.read("audit", "erasures", schema=AUDIT_SCHEMA).to_pylist()
    removed = json.loads(audit["rows_removed"])
    assert audit["verified"] and audit["entity"] == "customers" and audit["keys"] == 1
    assert removed["landing/customers"] >= 2 and removed["raw/customers"] >= 2 and removed["current/customers"] == 1
    assert removed["history/customers"] == len(alive_days)
    assert removed["current/card_transactions"] == sum(own_spend.values())
    assert removed["scd2/customers"] == versions
    assert removed["scd2/card_transactions"] == sum(own_spend.values())
    assert removed["landing/card_transactions"] >= sum(own_spend.values())
    assert audit["marts_from_day"] == min(alive_days | {h.date() for h in own_spend})
    assert person not in json.dumps({k: str(v) for k, v in audit.items()}), "the audit must not hold the key"

    # The marts no longer count the person: the erasure sensor rebuilds them from the first day they appeared.
    sensor = stack.defs.get_sensor_def("erasure_marts_sensor")
    request = sensor(
        build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=stack.instance,
            dagster_run=erased.dagster_run,
            dagster_event=erased.get_run_success_event(),
            resources={"lake": stack.lake},
        )
    )
    assert isinstance(request, RunRequest), request
    assert request.tags["dagster/asset_partition_range_start"] == f"{audit['marts_from_day']:%Y-%m-%d}"
    assert (
        stack.defs.resolve_job_def("daily_job")
        .execute_in_process(instance=stack.instance, tags=request.tags, asset_selection=request.asset_selection)
        .success
    )
    active_after, spend_after = _marts(stack)
    assert active_after == {day: n - (day in alive_days) for day, n in active_before.items()}
    assert {h: n for h, n in spend_after.items()} == {
        h: n - own_spend[h.astimezone(UTC)] for h, n in spend_before.items() if n > own_spend[h.astimezone(UTC)]
    }

    # A rebuild from the archive does not bring the person back.
    for layer in ("quarantine", *KEYED_LAYERS):
        for entity in ("customers", "card_transactions"):
            shutil.rmtree(stack.lake.uri(layer, entity))
    assert run(
        stack.defs, stack.instance, "hourly_job", hour_key(START), hour_key(START + timedelta(hours=HOURS - 1))
    ).success
    assert run(stack.defs, stack.instance, "daily_job", "2026-01-01", "2026-01-02").success
    assert find_keys(targets, [person], stack.lake) == {}
    assert _marts(stack) == (active_after, spend_after)

    # Nor does a replay of their old events from Kafka: the erasure list is honoured when decoding,
    # for their own changes and for the transactions that name them.
    replayed = [e for e in stack.source.changes if e.key == person or e.value.get("customer_id") == person]
    stack.publish(replayed)
    assert stack.defs.resolve_job_def("landing_job").execute_in_process(instance=stack.instance).success
    hours = sorted({hour_key(e.event_time) for e in replayed})
    assert run(stack.defs, stack.instance, "hourly_job", hours[0], hours[-1]).success
    for entity in ("customers", "card_transactions"):
        assert person not in {r["customer_id"] for r in stack.lake.read("raw", entity).to_pylist()}
        assert person not in {r["customer_id"] for r in stack.lake.read("current", entity).to_pylist()}


def test_the_command_line_erases_and_audits(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from resources.lake import LakeResource

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "PLATFORM_LAKE_ROOT": str(tmp_path / "lake")}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "erase", "--entity", "customers", "--key", "C999999"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["verified"] and printed["entity"] == "customers"
    [audit] = LakeResource(root=str(tmp_path / "lake")).read("audit", "erasures", schema=AUDIT_SCHEMA).to_pylist()
    assert audit["request_id"] == printed["request_id"]


ACCOUNTS = {
    "name": "accounts",
    "source": {"format": "json", "topic": "accounts"},
    "key": ["account_id"],
    "sequence": "version",
    "event_time": "changed_at",
    "fields": {
        "account_id": {"type": "long", "nullable": False},
        "changed_at": {"type": "timestamp"},
        "version": {"type": "long"},
    },
}


def test_an_integer_key_is_erased_and_verified_as_an_integer(lake):
    import pyarrow as pa

    from platform_assets.erasure import erase
    from platform_assets.lib.contract import parse_contract
    from platform_assets.lib.tables import current_schema

    accounts = parse_contract(ACCOUNTS)
    [target] = erasure_targets(accounts, [accounts])
    assert target.stored(["123"], b"k") == {(123,)} and target.predicate(["123"], b"k") == "(account_id = 123)"
    rows = [{"account_id": i, "changed_at": START, "version": 1} for i in (122, 123)]
    lake.append("current", "accounts", pa.Table.from_pylist(rows, current_schema(accounts)))
    assert find_keys([target], ["123"], lake) == {"current/accounts@v0": 1}

    audit = erase(accounts, ["123"], lake, [accounts])
    assert audit["verified"] and json.loads(audit["rows_removed"])["current/accounts"] == 1
    assert [r["account_id"] for r in lake.read("current", "accounts").to_pylist()] == [122]


@pytest.mark.parametrize("key", ["not-a-number", "1|2"])
def test_a_key_that_does_not_fit_the_contract_is_refused_before_anything_is_written(lake, key):
    from platform_assets.erasure import erase
    from platform_assets.lib.contract import parse_contract
    from platform_assets.lib.erasure import ErasureError

    accounts = parse_contract(ACCOUNTS)
    with pytest.raises(ErasureError, match=r"does not fit the key of accounts \(account_id\): give one value"):
        erase(accounts, [key], lake, [accounts])
    assert lake.table("erasure", "accounts") is None and lake.table("audit", "erasures") is None
