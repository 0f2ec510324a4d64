"""The whole chain through Dagster on a real broker, real Delta tables, embedded Sail and real dbt,
checked against the simulated source system's ground truth and against the plain-Python reference."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from helpers import mart_rows, sail_local_cluster

from platform_assets.lib import ordering
from platform_assets.lib.contract import load_contracts
from platform_assets.lib.pii import pii_key, protect
from platform_assets.lib.scd2 import scd2_rows, valid_at
from platform_assets.lib.tables import current_schema, scd2_schema
from simulator.source import Rates

pytestmark = [pytest.mark.broker, pytest.mark.spark, pytest.mark.dbt]

HOURS = 30  # two partial days, so history and marts cover more than one partition


@pytest.fixture(scope="module", params=["local", "local-cluster"])
def demo(request, session_dir, broker, tmp_path_factory):
    """The demo on the embedded Sail (local mode), then again on Sail in local-cluster mode (two workers
    that split every stage and shuffle, as a cluster does), merges and marts alike: code that works only
    in one process fails here."""
    from devstack.demo import run_demo

    rates = Rates(creates=6, updates=10, deletes=1, transactions=20, duplicate_share=0.05, late_share=0.05)
    if request.param == "local":
        yield run_demo(HOURS, seed=11, data_dir=session_dir, rates=rates)
        return
    # The hourly range run merges 30 hourly raw files in one task region of about 34 tasks: 2 x 32 slots.
    with sail_local_cluster(worker_task_slots=32) as remote, pytest.MonkeyPatch.context() as environment:
        environment.setenv("SPARK_REMOTE", remote)
        yield run_demo(HOURS, seed=11, data_dir=tmp_path_factory.mktemp("demo-on-a-cluster"), rates=rates)


@pytest.fixture(scope="module")
def contracts():
    return {c.name: c for c in load_contracts()}


@pytest.fixture(scope="module")
def lake(demo):
    from resources.lake import LakeResource

    return LakeResource.from_env()


def expected_row(contract, event_value):
    """What the platform must hold for a source record: typed, with PII protected."""
    from platform_assets.lib.decode import _Parsed, _typed_change

    change = _typed_change(contract, _Parsed("update", dict(event_value)))
    return protect(contract, change.values, pii_key())


def test_landing_holds_every_published_record_exactly_once(demo, lake, contracts):
    landing = lake.read("landing", "customers").to_pylist() + lake.read("landing", "card_transactions").to_pylist()
    positions = [(r["topic"], r["partition"], r["offset"]) for r in landing]
    assert len(positions) == len(set(positions))
    published = sum(1 for _ in positions)
    topics = {r["topic"] for r in landing}
    assert topics == {"customer-create", "customer-update", "customer-delete", "card-transactions"}
    for topic in topics:
        offsets = sorted(o for t, _, o in positions if t == topic)
        assert offsets == list(range(len(offsets))), f"gap or duplicate in {topic}"
    assert published >= len(demo.changes)


def test_current_equals_the_source_systems_state(demo, lake, contracts):
    customers = contracts["customers"]
    current = {r["customer_id"]: r for r in lake.read("current", "customers").to_pylist()}
    assert set(current) == set(demo.customers)
    fields = [f.name for f in customers.stored_fields]
    for customer_id, state in demo.customers.items():
        assert {f: current[customer_id][f] for f in fields} == expected_row(customers, state)
    deleted = {r["customer_id"] for r in lake.read("current_tombstones", "customers").to_pylist()}
    assert deleted == set(demo.deleted)
    transactions = {r["transaction_id"]: r["amount"] for r in lake.read("current", "card_transactions").to_pylist()}
    assert transactions == {t["transaction_id"]: t["amount"] for t in demo.transactions}  # Decimal amounts, exact


def test_current_equals_the_reference_model_over_raw(demo, lake, contracts):
    for name, contract in contracts.items():
        raw = lake.read("raw", name).to_pylist()
        reference = ordering.live_rows(contract, raw)
        current = {ordering.key_of(contract, r): r for r in lake.read("current", name).to_pylist()}
        columns = [c for c in reference[next(iter(reference))] if c != "_op"]
        assert {k: [r[c] for c in columns] for k, r in current.items()} == {
            k: [r[c] for c in columns] for k, r in reference.items()
        }


def test_history_holds_each_days_end_state(demo, lake, contracts):
    customers = contracts["customers"]
    history = lake.read("history", "customers").to_pylist()
    by_day: dict[date, dict[str, dict]] = defaultdict(dict)
    for row in history:
        by_day[row["snapshot_date"]][row["customer_id"]] = row
    assert sorted(by_day) == [date(2026, 1, 1), date(2026, 1, 2)]
    source_rows = [
        {**expected_row(customers, e.value), "_op": e.topic.split("-")[1], **_position(i), "_event_hour": e.event_time}
        for i, e in enumerate(demo.changes)
        if e.topic.startswith("customer-")
    ]
    for day, rows in by_day.items():
        reference = ordering.history_day(customers, source_rows, day)
        assert {k[0]: r["version"] for k, r in reference.items()} == {k: r["version"] for k, r in rows.items()}


def test_scd2_equals_its_reference_and_agrees_with_history_on_every_day(demo, lake, contracts):
    """The version in effect at the end of day D is history's row for D, for every key and every day."""
    for name, contract in contracts.items():
        columns = [f.name for f in scd2_schema(contract)]
        scd2 = lake.read("scd2", name).to_pylist()
        reference = scd2_rows(contract, lake.read("raw", name).to_pylist())
        assert sorted(tuple(r[c] for c in columns) for r in scd2) == sorted(
            tuple(r[c] for c in columns) for r in reference
        )
        state = [f.name for f in current_schema(contract)]
        history: dict[date, dict[tuple, list]] = defaultdict(dict)
        for row in lake.read("history", name).to_pylist():
            history[row["snapshot_date"]][ordering.key_of(contract, row)] = [row[c] for c in state]
        assert sorted(history) == [date(2026, 1, 1), date(2026, 1, 2)]
        for day, rows in history.items():
            end_of_day = ordering.end_of_day(day) - timedelta(microseconds=1)
            in_effect = {ordering.key_of(contract, r): [r[c] for c in state] for r in valid_at(scd2, end_of_day)}
            assert in_effect == rows, (name, day)


def _position(index: int) -> dict:
    return {
        "_kafka_timestamp": datetime(2026, 1, 1, tzinfo=UTC),
        "_topic": "t",
        "_partition": 0,
        "_offset": index,
    }


def test_marts_match_an_independent_computation_from_the_ground_truth(demo, lake):
    kpis = {row[0]: row[1:] for row in mart_rows(lake, "customer_kpis_daily")}
    changes = [e for e in demo.changes if e.topic.startswith("customer-")]
    for day in (date(2026, 1, 1), date(2026, 1, 2)):
        todays = [e for e in changes if e.event_time.date() == day]
        kinds = {
            kind: len({e.key for e in todays if e.topic == f"customer-{kind}"})
            for kind in ("create", "update", "delete")
        }
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        alive: dict[str, bool] = {}
        for event in sorted((e for e in changes if e.event_time < end), key=lambda e: e.value["version"]):
            alive[event.key] = event.topic != "customer-delete"
        active = sum(alive.values())
        assert kpis[day] == (active, kinds["create"], kinds["update"], kinds["delete"])
    spend = {row[0]: (row[1], row[3]) for row in mart_rows(lake, "card_spend_hourly")}
    hourly: dict[datetime, list[Decimal]] = defaultdict(list)
    for transaction in demo.transactions:
        occurred = datetime.fromisoformat(transaction["occurred_at"].replace("Z", "+00:00"))
        hourly[occurred.replace(minute=0, second=0, microsecond=0)].append(transaction["amount"])
    assert {h.astimezone(UTC): (n, s) for h, (n, s) in spend.items()} == {
        h: (len(a), sum(a)) for h, a in hourly.items()
    }

    # Spend per day and the city the paying customer had at the end of that day ('unknown' once deleted).
    by_city = {(row[0], row[1]): (row[2], row[3]) for row in mart_rows(lake, "card_spend_daily_by_city")}
    history: dict[str, list] = defaultdict(list)
    for event in sorted(changes, key=lambda e: e.value["version"]):
        history[event.key].append(event)
    daily: dict[tuple[date, str], list[Decimal]] = defaultdict(list)
    for transaction in demo.transactions:
        day = datetime.fromisoformat(transaction["occurred_at"].replace("Z", "+00:00")).date()
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        city = "unknown"
        for event in history[transaction["customer_id"]]:
            if event.event_time < end:
                city = "unknown" if event.topic == "customer-delete" else event.value["city"]
        daily[(day, city)].append(transaction["amount"])
    assert len({city for _, city in daily}) > 2, "the demo must spread spend over several cities"
    assert by_city == {key: (len(a), sum(a)) for key, a in daily.items()}
    # Exact sums of the decimal amounts, never floats.
    assert {type(s) for _, s in spend.values()} | {type(s) for _, s in by_city.values()} == {Decimal}


def test_rerunning_a_partition_gives_the_same_tables(demo, lake):
    from dagster import DagsterInstance

    from platform_assets.definitions import build_definitions, resources_from_env
    from platform_assets.lib.contract import load_contracts

    defs = build_definitions(load_contracts(), resources_from_env())

    marts = ("customer_kpis_daily", "card_spend_hourly", "card_spend_daily_by_city")

    def all_mart_rows() -> dict[str, list[tuple]]:
        return {mart: sorted(mart_rows(lake, mart)) for mart in marts}

    before = {
        layer: lake.read(layer, "customers").sort_by(_sort_keys(layer))
        for layer in ("raw", "current", "history", "scd2")
    }
    marts_before = all_mart_rows()
    assert all(marts_before.values()), "every mart must have rows for the rerun to prove anything"
    instance = DagsterInstance.get()
    for job, partition in (("hourly_job", "2026-01-01-05:00"), ("daily_job", "2026-01-02")):
        assert defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=partition).success
    for layer, table in before.items():
        assert lake.read(layer, "customers").sort_by(_sort_keys(layer)).equals(table), layer
    assert all_mart_rows() == marts_before


def _sort_keys(layer: str) -> list[tuple[str, str]]:
    keys = [("customer_id", "ascending"), ("_topic", "ascending"), ("_offset", "ascending")]
    return [("snapshot_date", "ascending"), *keys] if layer == "history" else keys
