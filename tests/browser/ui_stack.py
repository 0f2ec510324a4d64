"""The stack behind the browser tests: `dagster dev` on loopback with the real code location.

The module-scoped `dagster_ui` fixture (conftest.py) publishes a few simulated hours, plus one hour of
mostly broken records, on the session's tansu broker under the shipped contracts' topic names; starts
`dagster dev` on a private instance and lake; stops every sensor and schedule before anything is
materialized, so the daemon launches only what the tests launch; lands the records with `landing_job`;
and stops the whole process group at teardown. Chromium comes from `devstack/install_browser.sh`;
without it the tests fail (they are never skipped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from devstack.dagster_ui import LOCATION, graphql, launch_run

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
START = datetime(2026, 1, 1, tzinfo=UTC)
GOOD_HOURS = 6  # 2026-01-01 00:00 .. 05:00
BAD_HOUR = START + timedelta(hours=10)  # mostly invalid JSON: raw/customers' quarantine_rate check fails
BROKEN_RECORDS = 20
STARTUP_TIMEOUT_S = 180
ALERT_SENSOR_INTERVAL_S = 5
ALERT_TIMEOUT_S = 120
RUN_TIMEOUT_S = 180


def hour_key(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d-%H:%M")


@dataclass
class DagsterUI:
    """A running `dagster dev` and what was published to it."""

    url: str
    process: subprocess.Popen
    log_path: Path
    lake_root: Path
    screenshots: Path
    env: dict[str, str]
    alerts: list[tuple[float, dict[str, Any]]]
    customer_events_by_hour: dict[str, list[Any]] = field(default_factory=dict)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.url, query, variables, timeout_s=30)

    def run_status(self, run_id: str) -> str:
        data = self.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})
        return data["runOrError"]["status"]

    def wait_for_run(self, run_id: str, timeout_s: float = RUN_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            self.check_alive()
            time.sleep(1)
        raise AssertionError(f"run {run_id} did not finish in {timeout_s} s\n{self.log_tail()}")

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        data = self.graphql(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
            " __typename ... on PartitionBackfill { status runs(limit: 100) { runId status } } } }",
            {"id": backfill_id},
        )
        return data["partitionBackfillOrError"]

    def wait_for_backfill(self, backfill_id: str, timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            backfill = self.backfill(backfill_id)
            if backfill["status"] in ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "COMPLETED"):
                return backfill
            self.check_alive()
            time.sleep(1)
        raise AssertionError(f"backfill {backfill_id} did not finish in {timeout_s} s\n{self.log_tail()}")

    def lake_rows(self, layer: str, entity: str, hour: str) -> list[dict[str, Any]]:
        """Rows of a lake table whose `_event_hour` is the given hourly partition."""
        from resources.lake import LakeResource

        table = LakeResource(root=str(self.lake_root)).read(layer, entity)
        return [row for row in table.to_pylist() if hour_key(row["_event_hour"]) == hour]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"dagster dev exited with {self.process.returncode}\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no dagster dev log)"
        return "--- dagster dev log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


def publish(bootstrap: str) -> dict[str, list[Any]]:
    """Six clean hours of both entities, then an hour where most customer records are not JSON at all."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    from simulator.service import Publisher, ensure_topics
    from simulator.source import ALL_TOPICS, CUSTOMER_TOPICS, Rates, SourceSystem

    existing = set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics)
    clash = sorted(existing & set(ALL_TOPICS))
    assert not clash, (
        f"topics {clash} already exist on the session broker {bootstrap}: another test publishes under the shipped "
        "contracts' topic names, which the browser tests' code location consumes; give that test its own topics"
    )
    ensure_topics(bootstrap, ALL_TOPICS)
    rates = Rates(creates=4, updates=4, deletes=0, transactions=6, duplicate_share=0.0, late_share=0.0)
    source = SourceSystem(seed=23, start=START, rates=rates)
    publisher = Publisher(bootstrap)
    by_hour: dict[str, list[Any]] = {}
    hours = [START + timedelta(hours=h) for h in range(GOOD_HOURS)] + [BAD_HOUR]
    for hour in hours:
        events = source.hour(hour)
        publisher.publish(events)
        by_hour[hour_key(hour)] = [e for e in events if e.topic in CUSTOMER_TOPICS.values()]
    producer = Producer({"bootstrap.servers": bootstrap})
    for index in range(BROKEN_RECORDS):
        moment = BAD_HOUR + timedelta(minutes=2 * index + 1)
        producer.produce(
            CUSTOMER_TOPICS["update"],
            key=f"BROKEN{index:03d}".encode(),
            value=b'{"customer_id": "truncated',
            timestamp=int(moment.timestamp() * 1000),
        )
    assert producer.flush(60) == 0, "the broker did not acknowledge the broken records"
    return by_hour


def platform_env(home: Path, lake_root: Path, bootstrap: str, webhook_url: str, ui_url: str) -> dict[str, str]:
    """The environment of `dagster dev` and of every `dagster` command run against the same instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "DAGSTER_", "SPARK_REMOTE"))}
    env.update(
        {
            "PLATFORM_MODE": "dev",
            "PLATFORM_START": hour_key(START),
            "DAGSTER_HOME": str(home),
            "PLATFORM_LAKE_ROOT": str(lake_root),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PYTHONPATH": str(ROOT),
            "RUST_LOG": "warn",
            # The lag sensors never request a landing run (the tests land by hand) but tick every few seconds,
            # recording the lag the landing asset plots; the alert sensors post to the tests' webhook.
            "PLATFORM_LAG_THRESHOLD": str(10**12),
            "PLATFORM_MAX_DELAY_S": str(10**12),
            "PLATFORM_LAG_SENSOR_INTERVAL_S": str(ALERT_SENSOR_INTERVAL_S),
            "PLATFORM_ALERT_WEBHOOK_URL": webhook_url,
            "PLATFORM_ALERT_WEBHOOK_FORMAT": "json",
            "PLATFORM_UI_URL": ui_url,
        }
    )
    return env


def start_dagster_dev(log_path: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).with_name("dagster")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown stops webserver, daemon, code server, runs
        )
    return process


def wait_until_loaded(ui: DagsterUI) -> None:
    """The webserver answers and the code location has loaded (a load error fails with its message)."""
    query = (
        "{ workspaceOrError { __typename ... on Workspace { locationEntries { name"
        " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        ui.check_alive()
        try:
            data = ui.graphql(query)
        except (requests.RequestException, RuntimeError) as error:  # not up yet, or still loading
            last = error
            time.sleep(0.5)
            continue
        entries = {e["name"]: e["locationOrLoadError"] for e in data["workspaceOrError"].get("locationEntries", [])}
        loaded = entries.get(LOCATION)
        if loaded and loaded["__typename"] == "PythonError":
            raise AssertionError(f"code location {LOCATION} failed to load: {loaded['message']}")
        if loaded and loaded["__typename"] == "RepositoryLocation":
            return
        last = entries
        time.sleep(0.5)
    raise AssertionError(f"dagster dev did not load {LOCATION} in {STARTUP_TIMEOUT_S} s ({last})\n{ui.log_tail()}")


# Sensors that launch no run in this stack: the customers lag sensor (thresholds out of reach) records the
# lag plotted on the landing asset, the alert sensors post failures to the tests' webhook.
RUNLESS_SENSORS = ("lag_sensor_customers", "alert_on_run_failure", "alert_on_check_failure")


def stop_automation(ui: DagsterUI) -> None:
    """Stop every sensor and schedule that could launch a run, so the daemon launches only the runs the
    tests launch."""
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { ... on RepositoryLocation {"
        " repositories { sensors { name sensorState { id status } } schedules { name scheduleState { id status } } }"
        " } } } } } }"
    )

    def instigators() -> list[tuple[str, str, str, str]]:
        found = []
        for entry in ui.graphql(query)["workspaceOrError"]["locationEntries"]:
            for repository in (entry["locationOrLoadError"] or {}).get("repositories", []):
                found += [
                    ("sensor", s["name"], s["sensorState"]["id"], s["sensorState"]["status"])
                    for s in repository["sensors"]
                ]
                found += [
                    ("schedule", s["name"], s["scheduleState"]["id"], s["scheduleState"]["status"])
                    for s in repository["schedules"]
                ]
        return found

    # A sensor tick that the daemon was evaluating when the stop came writes its state back as it read it,
    # RUNNING again (seen once for the history sensors): stopped again until the state stays stopped.
    deadline = time.monotonic() + 30
    while True:
        running = [i for i in instigators() if i[3] == "RUNNING" and i[1] not in RUNLESS_SENSORS]
        if not running or time.monotonic() > deadline:
            break
        for kind, name, state_id, _ in running:
            if kind == "sensor":
                mutation = "mutation($id: String) { stopSensor(id: $id) { __typename } }"
                expected = "StopSensorMutationResult"
            else:
                mutation = "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }"
                expected = "ScheduleStateResult"
            answer = ui.graphql(mutation, {"id": state_id})
            assert expected in json.dumps(answer), f"could not stop {kind} {name}: {answer}"
        time.sleep(1)
    assert not running, f"still running 30 s after being stopped: {[name for _, name, _, _ in running]}"


def land(ui: DagsterUI) -> None:
    run_id = launch_run(ui.url, "landing_job")
    status = ui.wait_for_run(run_id)
    assert status == "SUCCESS", f"landing_job run {run_id} ended {status}\n{ui.log_tail()}"
