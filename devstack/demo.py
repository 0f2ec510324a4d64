"""`make demo`: the whole chain on embedded defaults, end to end, through Dagster.

Starts the tansu broker and the simulated source system, publishes about two simulated days,
materializes landing, raw, current, history and the marts through Dagster jobs (recorded in the
Dagster instance under DAGSTER_HOME, so `make dev` shows the runs), prints row counts per layer and
the KPI table, then stops what it started.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from dagster import DagsterInstance

from devstack.broker import prepare_dagster_home, start_broker
from simulator.service import Publisher, ensure_topics, run_simulated, serve_rest
from simulator.source import ALL_TOPICS, Rates, SourceSystem


def run_demo(hours: int, seed: int, data_dir: Path, fresh: bool = True, rates: Rates | None = None) -> SourceSystem:
    """Run the whole chain; returns the simulated source, whose state is the ground truth."""
    if fresh:
        for sub in ("lake", "dagster"):
            shutil.rmtree(data_dir / sub, ignore_errors=True)
    prepare_dagster_home(data_dir / "dagster")
    os.environ.setdefault("PLATFORM_MODE", "dev")
    os.environ.setdefault("RUST_LOG", "warn")
    os.environ["PLATFORM_LAKE_ROOT"] = str((data_dir / "lake").resolve())
    os.environ["DAGSTER_HOME"] = str((data_dir / "dagster").resolve())
    broker = start_broker(log_path=data_dir / "tansu.log")
    try:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
        start = datetime(2026, 1, 1, tzinfo=UTC)
        source = SourceSystem(seed=seed, start=start, rates=rates or Rates())
        rest = serve_rest(source, 0, threading.Lock())
        os.environ["CUSTOMER_SERVICE_URL"] = f"http://127.0.0.1:{rest.server_address[1]}"
        ensure_topics(broker.bootstrap, ALL_TOPICS)
        published = run_simulated(source, Publisher(broker.bootstrap), hours)
        print(f"published {published} events for {hours} simulated hours on {broker.bootstrap}")

        from platform_assets.definitions import build_definitions, resources_from_env
        from platform_assets.lib.contract import load_contracts

        # Built now, not imported: the resources must see the broker and lake this run just set up.
        defs = build_definitions(load_contracts(), resources_from_env())
        from platform_assets.partitions import day_key, hour_key, range_tags

        instance = DagsterInstance.get()
        last_hour = start + timedelta(hours=hours - 1)
        steps = [
            ("landing_job", {}),
            ("hourly_job", range_tags(hour_key(start), hour_key(last_hour))),
            ("daily_job", range_tags(day_key(start), day_key(last_hour))),
        ]
        for job_name, tags in steps:
            began = time.monotonic()
            result = defs.resolve_job_def(job_name).execute_in_process(
                instance=instance,
                tags=tags,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            if not result.success:
                raise SystemExit(f"{job_name} failed; open the run {result.run_id} in `make dev` to see why")
            print(f"{job_name}: run {result.run_id} succeeded in {time.monotonic() - began:.1f} s")
        rest.shutdown()
        return source
    finally:
        broker.stop()


def layer_counts() -> dict[str, dict[str, int]]:
    """Rows per layer and entity as readers see them (current, and history's last day)."""
    import pyarrow.compute as pc

    from platform_assets.lib.contract import load_contracts
    from resources.lake import LakeResource

    lake = LakeResource.from_env()
    counts: dict[str, dict[str, int]] = {}
    for contract in load_contracts():
        row = counts.setdefault(contract.name, {})
        for layer in ("landing", "raw", "quarantine", "current"):
            table = lake.table(layer, contract.name)
            row[layer] = 0 if table is None else table.count()
        days = lake.read("history", contract.name).column("snapshot_date")
        row["history"] = pc.sum(pc.equal(days, pc.max(days))).as_py() or 0
    return counts


def print_summary() -> None:
    from resources.lake import LakeResource

    counts = layer_counts()
    layers = ("landing", "raw", "quarantine", "current", "history")
    print("\nRows per layer (current: live keys; history: live keys on the last day)")
    print(f"{'entity':<20}" + "".join(f"{layer:>12}" for layer in layers))
    for entity, row in counts.items():
        print(f"{entity:<20}" + "".join(f"{row[layer]:>12}" for layer in layers))
    lake = LakeResource.from_env()
    print(f"\nCustomer KPIs per day (published marts: {lake.uri('marts', '<model>')})")
    header = ("day", "active", "new", "updated", "deactivated")
    print("".join(f"{h:>14}" for h in header))
    print_rows(lake.select("marts", "customer_kpis_daily", "select * from marts order by day"))
    print("\nCard spend per day and city")
    print("".join(f"{h:>14}" for h in ("day", "city", "transactions", "spend")))
    print_rows(lake.select("marts", "card_spend_daily_by_city", "select * from marts order by day, city"))


def print_rows(table: pa.Table | None) -> None:
    """The rows of a published mart (a Delta table of the lake), or a note that none is published yet."""
    if table is None:
        print("(not published yet)")
        return
    for row in pa.table(table).to_pylist():
        print("".join(f"{v!s:>14}" for v in row.values()))


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.demo", description=__doc__)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    args = parser.parse_args()
    run_demo(args.hours, args.seed, args.data_dir)
    print_summary()


if __name__ == "__main__":
    main()
