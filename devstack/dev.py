"""`make dev`: the Dagster UI on the embedded defaults, with live data.

Starts the tansu broker, the simulated source system in live mode (REST export on
CUSTOMER_SERVICE_PORT, default 8765) and `dagster dev` (UI on DAGSTER_PORT, default 3000, with the
daemon running sensors and schedules); Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devstack.broker import prepare_dagster_home, start_broker, stop_group

# Pace for a 2-core machine: a simulated hour every 2 minutes, sensors every 30 s, landing whatever
# waited a minute. Faster paces keep both cores busy with Dagster's own run start-up.
SECONDS_PER_HOUR = 120.0
DAYS_OF_PARTITIONS = 3


def dev_environment(
    environ: dict[str, str], data_dir: Path, now: datetime, seconds_per_hour: float = SECONDS_PER_HOUR
) -> dict[str, str]:
    """The environment of `make dev`: what the caller set wins, the rest looks like a production
    deployment a few days old: partitions start DAYS_OF_PARTITIONS days back (not at the code's
    default start, which would give the UI thousands of empty hours) and the simulator publishes
    those days first, the sensors keep production's thresholds with a shorter delay, so live events
    show up as rows within a few minutes, and freshness hours last as long as the simulator's hours."""
    env = dict(environ)
    # This environment's tools first: `dagster dev` re-parses the dbt project with its `dbt`.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PLATFORM_MODE", "dev")
    env.setdefault("PLATFORM_LAKE_ROOT", str(data_dir / "lake"))
    env.setdefault("DAGSTER_HOME", str(data_dir / "dagster"))
    env.setdefault("PLATFORM_START", f"{now - timedelta(days=DAYS_OF_PARTITIONS):%Y-%m-%d}-00:00")
    env.setdefault("PLATFORM_LAG_SENSOR_INTERVAL_S", "30")
    env.setdefault("PLATFORM_MAX_DELAY_S", "60")
    env.setdefault("PLATFORM_FRESHNESS_HOUR_S", str(seconds_per_hour))
    rest_port = env.setdefault("CUSTOMER_SERVICE_PORT", "8765")
    env.setdefault("CUSTOMER_SERVICE_URL", f"http://127.0.0.1:{rest_port}")
    return env


def backlog_hours(start: str, now: datetime) -> int:
    """The hours from the first partition up to the current one, which the simulator publishes before
    it goes live."""
    first = datetime.strptime(start, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
    return max(0, int((now.replace(minute=0, second=0, microsecond=0) - first) / timedelta(hours=1)))


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.dev", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DAGSTER_PORT", "3000")))
    parser.add_argument("--seconds-per-hour", type=float, default=SECONDS_PER_HOUR, help="pace of the live simulator")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)  # the broker's log goes there, wherever Dagster's home is
    env = dev_environment(dict(os.environ), data_dir, datetime.now(UTC), args.seconds_per_hour)
    prepare_dagster_home(Path(env["DAGSTER_HOME"]))
    rest_port = env["CUSTOMER_SERVICE_PORT"]
    # `kill` (SIGTERM) stops everything it started, as Ctrl-C does, instead of orphaning the children.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    broker = start_broker(log_path=data_dir / "tansu.log")
    env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
    children: list[subprocess.Popen] = []
    try:
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "simulator",
                    "--bootstrap",
                    broker.bootstrap,
                    "--live",
                    "--rest-port",
                    rest_port,
                    "--seconds-per-hour",
                    str(args.seconds_per_hour),
                    "--backlog-hours",
                    str(backlog_hours(env["PLATFORM_START"], datetime.now(UTC))),
                ],
                env=env,
                start_new_session=True,
            )
        )
        dagster = Path(sys.executable).with_name("dagster")
        print(f"broker {broker.bootstrap}; Dagster UI on http://127.0.0.1:{args.port}", flush=True)
        children.append(
            subprocess.Popen(
                [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(args.port)],
                env=env,
                start_new_session=True,  # its own process group: stopping it stops webserver, daemon and runs
            )
        )
        children[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            stop_group(child)
        broker.stop()


if __name__ == "__main__":
    main()
