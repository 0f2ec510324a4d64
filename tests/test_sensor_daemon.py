"""The lag sensor through the real sensor daemon: its runs enter the queue behind manual runs, and
its lag and delay are recorded on the landing asset every tick."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetKey, DagsterRunStatus, RunsFilter, materialize
from dagster._core.test_utils import instance_for_test
from helpers import RECORDS_HOUR, good_and_bad_records, loaded_location, tick

from platform_assets.landing import build_landing_asset
from platform_assets.lib.contract import parse_contract
from platform_assets.partitions import RANGE_END_TAG, RANGE_START_TAG

pytestmark = pytest.mark.broker


def test_lag_sensor_ticks_queue_prioritised_runs_and_record_lag(broker, tmp_path, monkeypatch):
    document, resources = good_and_bad_records(broker, tmp_path, "ticked", {"max_quarantine_rate": 1.0})
    for name, value in {
        "TEST_CONTRACT": json.dumps(document),
        "TEST_GROUP_PREFIX": resources["kafka"].group_prefix,
        "PLATFORM_LAG_THRESHOLD": "1",
        "PLATFORM_LAKE_ROOT": str(tmp_path / "lake"),
        # This test's broker: an in-process demo of an earlier test leaves the variable naming its own.
        "KAFKA_BOOTSTRAP_SERVERS": broker,
    }.items():
        monkeypatch.setenv(name, value)
    landing_key = AssetKey(["landing", "landing_ticked"])
    with instance_for_test() as instance, loaded_location(instance) as workspace:
        started = datetime.now(UTC)
        tick(workspace, started)
        [landing_run] = instance.get_runs(RunsFilter(job_name="landing_job"))
        assert landing_run.status == DagsterRunStatus.QUEUED
        assert landing_run.tags["dagster/priority"] == "-1" and landing_run.tags["entity"] == "ticked"

        # The landing run the queue would start, run here in process; then the next tick.
        assert materialize([build_landing_asset(parse_contract(document))], instance=instance, resources=resources)
        tick(workspace, started + timedelta(seconds=40))
        [hourly_run] = instance.get_runs(RunsFilter(job_name="hourly_job"))
        assert hourly_run.status == DagsterRunStatus.QUEUED
        assert (hourly_run.tags[RANGE_START_TAG], hourly_run.tags[RANGE_END_TAG]) == (RECORDS_HOUR, RECORDS_HOUR)
        assert hourly_run.tags["dagster/priority"] == "-1"
        assert {key.path[0] for key in hourly_run.asset_selection} == {"raw", "quarantine", "current", "scd2"}

        observations = instance.fetch_observations(landing_key, limit=10).records
        lags = sorted(record.asset_observation.metadata["consumer_lag"].value for record in observations)
        assert lags == [0, 2]  # one per tick: 2 waiting, then 0 after landing
