"""`make dev` looks like a production deployment a few days old, paced for a 2-core machine."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from devstack.dev import backlog_hours, dev_environment
from platform_assets.partitions import Partitions
from platform_assets.settings import PlatformSettings

pytestmark = pytest.mark.unit


def test_dev_partitions_start_a_few_days_back_and_sensors_keep_production_thresholds(tmp_path: Path):
    now = datetime(2026, 11, 28, 22, 40, tzinfo=UTC)
    env = dev_environment({"PATH": "/usr/bin"}, tmp_path, now)
    settings = PlatformSettings.from_env(env)
    assert settings.start == "2026-11-25-00:00"
    hours = Partitions.starting(settings.start).hourly.get_partition_keys(current_time=now)
    assert len(hours) == 3 * 24 + 23  # three days, then today up to the hour in progress (22:00)
    assert settings.sensor_interval_s == 30 and settings.lag_threshold == PlatformSettings().lag_threshold
    assert env["PLATFORM_MODE"] == "dev" and env["DAGSTER_HOME"] == str(tmp_path / "dagster")
    # The simulator first publishes those days, up to the current hour, as a source running for days would.
    assert backlog_hours(settings.start, now) == 3 * 24 + 22
    assert backlog_hours("2026-12-01-00:00", now) == 0  # a start in the future: nothing before going live


def test_what_the_developer_set_wins(tmp_path: Path):
    env = dev_environment(
        {"PLATFORM_START": "2026-01-01-00:00", "PLATFORM_MAX_DELAY_S": "5"}, tmp_path, datetime.now(UTC)
    )
    assert (env["PLATFORM_START"], env["PLATFORM_MAX_DELAY_S"]) == ("2026-01-01-00:00", "5")


def test_dev_freshness_hours_last_as_long_as_the_simulators_hours(tmp_path: Path):
    """customers.yaml sets quality.freshness_hours: 2. In `make dev` an event hour passes every 120 s, so
    `current` turns red 4 minutes after its last merge instead of 2 hours: a stopped simulator shows."""
    from platform_assets.definitions import build_definitions
    from platform_assets.entity import layer_asset_key
    from platform_assets.lib.contract import load_contracts

    env = dev_environment({"PATH": "/usr/bin"}, tmp_path, datetime.now(UTC), seconds_per_hour=120)
    defs = build_definitions(load_contracts(), settings=PlatformSettings.from_env(env))
    key = layer_asset_key("current", "customers")
    policy = defs.resolve_assets_def(key).specs_by_key[key].freshness_policy
    assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 2 * 120
    production = build_definitions(load_contracts(), settings=PlatformSettings())
    assert (
        production.resolve_assets_def(key).specs_by_key[key].freshness_policy.fail_window.to_timedelta().total_seconds()
        == 2 * 3600
    )


def test_the_soak_runs_make_dev_on_its_own_data_directory_whatever_make_exports(tmp_path: Path):
    """`make soak` ran `make dev` with the Makefile's DAGSTER_HOME and PLATFORM_LAKE_ROOT (`.data/`),
    while it reads its own data directory: dev's defaults never applied, and `.data/soak` was never made."""
    from devstack.soak import soak_environment

    made = {"PATH": "/usr/bin", "DAGSTER_HOME": "/repo/.data/dagster", "PLATFORM_LAKE_ROOT": "/repo/.data/lake"}
    soak_dir = tmp_path / "soak"
    env = dev_environment(
        soak_environment(made, soak_dir, 3300, "http://127.0.0.1:1/alerts"), soak_dir, datetime.now(UTC)
    )
    assert env["DAGSTER_HOME"] == str(soak_dir / "dagster") and env["PLATFORM_LAKE_ROOT"] == str(soak_dir / "lake")
    assert env["PLATFORM_UI_URL"] == "http://127.0.0.1:3300" and env["CUSTOMER_SERVICE_PORT"] == "3301"


def test_the_soak_stops_naming_the_log_when_make_dev_has_exited(tmp_path: Path):
    """`make dev` that exited at start left the soak polling a UI that never came for ten minutes."""
    import subprocess
    import sys

    from devstack.soak import DevStopped, ensure_running

    log = tmp_path / "soak-dev.log"
    dev = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dev.wait()
    with pytest.raises(DevStopped, match=f"exited with code 3.*{log}"):
        ensure_running(dev, log)
    ensure_running(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"]), log)
