"""`make soak`: half an hour of `make dev` watched as an operator would, with the waits measured.

It starts `devstack.dev` on its own data directory and ports, with alerts posted to a webhook it
serves itself, and while it runs:

- samples the run queue every few seconds: pending runs per entity and layer (the sensors must keep
  at most one), queue length, runs in flight;
- times the first rows in `current` after start;
- launches a partition by hand twice, as an engineer does from the UI, and times how long each waits
  before it starts;
- counts the lag observations the landing sensor records (the UI plots them);
- near the middle, stops the simulator and publishes an hour of records that are not JSON: times how
  long until Dagster's freshness daemon turns `current` red and until the failed blocking check
  reaches the webhook;
- at the end, screenshots the lineage graph, the landing asset's lag plot, the runs and the red asset.

The figures go to `benchmarks/results/dev_soak.json` (screenshots beside the data directory); the
README's operating section quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from devstack.broker import stop_group
from devstack.dagster_ui import graphql, launch_run

# Up to 40 s for each child of `devstack.dev` (dagster dev, the simulator) and 15 s for the broker.
STOP_GRACE_S = 120
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "dev_soak.json"
PENDING = ("QUEUED", "NOT_STARTED")
IN_FLIGHT = ("STARTING", "STARTED")


class Webhook:
    """A local alert receiver: every POST body is kept with its arrival time."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.time(), json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Soak:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.ui = f"http://127.0.0.1:{port}"
        self.port = port
        self.started = time.time()
        self.samples: list[dict[str, Any]] = []
        self.events: dict[str, Any] = {}

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.ui, query, variables)

    def elapsed(self) -> float:
        return round(time.time() - self.started, 1)

    def runs(self, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        data = self.graphql(
            "query($s: [RunStatus!]) { runsOrError(filter: {statuses: $s}) { ... on Runs { results {"
            " runId status jobName creationTime startTime tags { key value } } } } }",
            {"s": list(statuses)},
        )
        return data["runsOrError"]["results"]

    def sample(self) -> None:
        pending = self.runs(PENDING)
        per_entity_layer = Counter(
            (tags.get("entity", "?"), tags.get("layer", "manual"))
            for run in pending
            for tags in [{t["key"]: t["value"] for t in run["tags"]}]
            if "entity" in tags
        )
        self.samples.append(
            {
                "t_s": self.elapsed(),
                "pending": len(pending),
                "in_flight": len(self.runs(IN_FLIGHT)),
                "max_pending_per_entity_layer": max(per_entity_layer.values(), default=0),
                "crowded": sorted(f"{e}/{layer}" for (e, layer), n in per_entity_layer.items() if n > 1),
            }
        )

    def launch_by_hand(self, hour: str) -> str:
        """What the UI's Materialize button does for one partition of raw and current."""
        keys = [["raw", "raw_customers"], ["quarantine", "quarantine_customers"], ["current", "current_customers"]]
        return launch_run(self.ui, "__ASSET_JOB", keys, {"dagster/partition": hour})

    def run_times(self, run_id: str) -> dict[str, Any]:
        data = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status creationTime startTime endTime } } }",
            {"id": run_id},
        )
        return data["runOrError"]


class DevStopped(RuntimeError):
    """`make dev` exited while the soak watched it: nothing more can be measured."""


def ensure_running(dev: subprocess.Popen, log_path: Path) -> bool:
    """True while `make dev` runs; raises `DevStopped`, naming its log, once it has exited."""
    code = dev.poll()
    if code is not None:
        raise DevStopped(f"make dev (devstack.dev) exited with code {code}; its output is in {log_path}")
    return True


def soak_environment(environ: dict[str, str], data_dir: Path, port: int, webhook_url: str) -> dict[str, str]:
    """The environment of the `make dev` the soak watches: its Dagster home and lake in the soak's data
    directory, where the soak reads them (the Makefile exports `make dev`'s own), alerts to the soak's
    webhook, the simulator's REST export beside the UI's port."""
    return {
        **environ,
        "DAGSTER_HOME": str(data_dir / "dagster"),
        "PLATFORM_LAKE_ROOT": str(data_dir / "lake"),
        "PLATFORM_ALERT_WEBHOOK_URL": webhook_url,
        "PLATFORM_ALERT_WEBHOOK_FORMAT": "json",
        "CUSTOMER_SERVICE_PORT": str(port + 1),
        "PLATFORM_UI_URL": f"http://127.0.0.1:{port}",
    }


def wait_for(what: str, predicate, timeout_s: float, every_s: float = 5.0) -> float | None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if predicate():
                return time.time()
        except DevStopped:
            raise
        except Exception as error:  # the UI restarts its code server now and then; keep looking
            print(f"soak: {what}: {error}", flush=True)
        time.sleep(every_s)
    return None


def current_has_rows(lake_root: Path) -> bool:
    from deltalake import DeltaTable

    path = lake_root / "current" / "customers"
    return path.exists() and DeltaTable(str(path)).to_pyarrow_dataset().count_rows() > 0


def freshness_state(home: Path) -> str | None:
    from dagster import AssetKey, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.get() as instance:
        key = AssetKey(["current", "current_customers"])
        record = instance.get_freshness_state_records([key]).get(key)
        return record.freshness_state.value if record else None


def lag_observations(home: Path) -> list[tuple[float, Any]]:
    from dagster import AssetKey, DagsterInstance
    from dagster._core.storage.event_log.base import AssetRecordsFilter

    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.get() as instance:
        records = instance.fetch_observations(
            AssetRecordsFilter(asset_key=AssetKey(["landing", "landing_customers"])), limit=5000
        ).records
        return [
            (record.timestamp, record.asset_observation.metadata["consumer_lag"].value)
            for record in records
            if record.asset_observation and "consumer_lag" in record.asset_observation.metadata
        ]


def publish_unreadable_hour(bootstrap: str, records: int) -> str:
    """An hour's worth of customer updates that are not JSON, in the hour the simulator last filled."""
    from confluent_kafka import Producer

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    producer = Producer({"bootstrap.servers": bootstrap})
    for index in range(records):
        moment = hour + timedelta(seconds=index % 3600)
        producer.produce(
            "customer-update",
            key=f"SOAK{index:04d}".encode(),
            value=b'{"customer_id": "trunc',
            timestamp=int(moment.timestamp() * 1000),
        )
    if producer.flush(60):
        raise RuntimeError("the broker did not acknowledge the unreadable records")
    return f"{hour:%Y-%m-%d-%H}:00"


def screenshots(soak: Soak, directory: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    directory.mkdir(parents=True, exist_ok=True)
    soak.graphql("mutation { setNuxSeen }")  # no "join the community" dialog over the pages
    taken = []
    pages = {
        "lineage": "/asset-groups",
        "landing-lag": "/assets/landing/landing_customers",
        "landing-events": "/assets/landing/landing_customers?view=events",
        "current-freshness": "/assets/current/current_customers",
        "raw-checks": "/assets/raw/raw_customers?view=checks",
        "runs": "/runs",
        "queue": "/runs?tab=queued",
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        for name, path in pages.items():
            page.goto(soak.ui + path)
            page.wait_for_timeout(6000)
            target = directory / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            taken.append(str(target))
        browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--data-dir", type=Path, default=Path(".data/soak"))
    parser.add_argument("--port", type=int, default=3300)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the report is written")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    if data_dir.exists():
        subprocess.run(["rm", "-rf", str(data_dir)], check=True)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    webhook = Webhook()
    # `kill` (SIGTERM) stops the `make dev` it started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    log_path = data_dir.parent / "soak-dev.log"
    log = log_path.open("w")
    dev = subprocess.Popen(
        [sys.executable, "-m", "devstack.dev", "--data-dir", str(data_dir), "--port", str(args.port)],
        env=soak_environment(dict(os.environ), data_dir, args.port, webhook.url),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    soak = Soak(data_dir, args.port)
    home, lake = data_dir / "dagster", data_dir / "lake"
    total_s = args.minutes * 60
    plan = {"hand_1": 0.3 * total_s, "stop_simulator": 0.5 * total_s, "hand_2": 0.55 * total_s}
    done: set[str] = set()
    hand_runs: dict[str, str] = {}
    try:
        loaded = wait_for("UI", lambda: ensure_running(dev, log_path) and soak.graphql("{ version }"), 300, 3)
        soak.events["ui_up_s"] = round(loaded - soak.started, 1) if loaded else None
        first_rows_at: float | None = None
        bootstrap = None
        while time.time() - soak.started < total_s:
            ensure_running(dev, log_path)
            try:
                soak.sample()
            except Exception as error:
                print(f"soak: sample: {error}", flush=True)
            if first_rows_at is None and current_has_rows(lake):
                first_rows_at = time.time()
                soak.events["first_current_rows_s"] = round(first_rows_at - soak.started, 1)
            for name in [n for n, at in plan.items() if n not in done and time.time() - soak.started >= at]:
                done.add(name)
                if name.startswith("hand"):
                    hour = f"{datetime.now(UTC) - timedelta(hours=3):%Y-%m-%d-%H}:00"
                    hand_runs[name] = soak.launch_by_hand(hour)
                    soak.events[f"{name}_launched_s"] = soak.elapsed()
                else:
                    bootstrap = bootstrap or read_bootstrap(log_path)
                    simulator = subprocess.run(
                        ["pgrep", "-f", f"simulator --bootstrap {bootstrap}"], capture_output=True, text=True
                    ).stdout.split()
                    for pid in simulator:
                        os.killpg(int(pid), signal.SIGTERM)
                    soak.events["simulator_stopped_s"] = soak.elapsed()
                    soak.events["unreadable_hour"] = publish_unreadable_hour(bootstrap, 600)
                    soak.events["unreadable_published_s"] = soak.elapsed()
            watching_freshness = "simulator_stopped_s" in soak.events and "freshness_red_s" not in soak.events
            if watching_freshness and freshness_state(home) == "FAIL":
                soak.events["freshness_red_s"] = soak.elapsed()
            if webhook.received and "first_alert_s" not in soak.events:
                soak.events["first_alert_s"] = round(webhook.received[0][0] - soak.started, 1)
            time.sleep(10)
        for name, run_id in hand_runs.items():
            times = soak.run_times(run_id)
            waited = (times["startTime"] - times["creationTime"]) if times.get("startTime") else None
            soak.events[f"{name}_waited_s"] = round(waited, 1) if waited is not None else None
            soak.events[f"{name}_status"] = times["status"]
        observations = lag_observations(home)
        soak.events["lag_observations"] = len(observations)
        observed_at = [at for at, _ in observations]
        soak.events["lag_observed_over_s"] = round(max(observed_at) - min(observed_at), 1) if observed_at else 0
        soak.events["alerts"] = [body for _, body in webhook.received]
        soak.events["screenshots"] = screenshots(soak, data_dir.parent / "soak-screenshots")
    finally:
        stop_group(dev, grace_s=STOP_GRACE_S)
        log.close()
    report = {
        "minutes": args.minutes,
        "events": soak.events,
        "max_pending": max((s["pending"] for s in soak.samples), default=0),
        "max_pending_per_entity_layer": max((s["max_pending_per_entity_layer"] for s in soak.samples), default=0),
        "crowded_samples": [s for s in soak.samples if s["crowded"]],
        "samples": soak.samples,
    }
    args.results.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2, default=str))


def read_bootstrap(log_path: Path) -> str:
    for line in log_path.read_text().splitlines():
        if line.startswith("broker "):
            return line.split()[1].rstrip(";")
    raise RuntimeError(f"no broker address in {log_path}")


if __name__ == "__main__":
    main()
