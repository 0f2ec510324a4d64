"""The benchmark harness runs end to end at tiny sizes, so it never rots; speed is judged by `make bench`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.spark, pytest.mark.dbt]

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_harness_runs_every_case_at_smoke_size():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((ROOT / "benchmarks" / "results" / "smoke.json").read_text())
    scaled = ["JSON", "landing", "merge", "history", "one", "hourly"]
    ten_times = ["one", "merge", "history"]  # an hour of 1M events, 20M rows, a day of 1M live keys
    assert [r["case"].split(" ")[0] for r in results] == [*scaled, "reads", "raw", "erasure", *ten_times]
    for result in results:
        assert result["seconds"] > 0 and result["baseline_seconds"] > 0 and result["ratio"] > 0
        assert result["case"] in done.stdout
        if result["case"].split(" ")[0] in scaled:  # each scaled case also ran at half size
            assert result["half_seconds"] > 0 and result["growth"] == result["seconds"] / result["half_seconds"]
            assert result["half_baseline_seconds"] > 0  # the baseline at half size, for its own growth
    sides = {
        "JSON": ("json.loads", "decode"),
        "landing": ("bare consume", "landing"),
        "merge": ("duckdb", "spark"),
        "hourly": ("one run",),  # the backfill as one run; one run per partition is timed once
    }
    for result in results:
        case = result["case"].split(" ")[0]
        for side in sides.get(case, ()):
            assert len(result["details"][side]) == 5, f"{result['case']}: medians of runs of {side}"
    processes = [result["process_id"] for result in results]
    assert len(set(processes)) == len(results) and os.getpid() not in processes, "each case runs in its own process"
    upkeep = results[len(scaled)]["details"]
    assert upkeep["files_after"]["landing"] < upkeep["files_before"]["landing"], "upkeep compacted the archive"
    assert upkeep["rows_read"]["raw hour"] > 0 and upkeep["rows_read"]["history day"] > 0
    erasure = results[len(scaled) + 2]["details"]
    for days in ("1_day", "2_days"):  # the smoke archive: 2 days against 1
        runs = list(zip(erasure[f"stage_seconds_{days}"], erasure[f"seconds_{days}"], strict=True))
        assert len(runs) == 5, "five erasures on each archive, each from a fresh copy"
        for stages, seconds in runs:
            rounding = 0.0005 * len(stages)  # each stage's seconds are rounded to the millisecond
            assert stages["find"] > 0 and stages["vacuum"] > 0 and sum(stages.values()) <= seconds + rounding


def test_the_archive_s_week_on_the_clock_leaves_the_removes_of_the_days_after_it_only(tmp_path):
    """What `retention_passed` stands in for: a week later, the files removed before it are deleted and
    the log no longer names them, while a file removed after it stays for a vacuum (or a look at old
    versions) to find."""
    import pyarrow as pa

    from benchmarks.__main__ import retention_passed
    from resources.lake import LakeResource

    lake = LakeResource(root=str(tmp_path / "lake"))
    lake.append("current", "things", pa.table({"id": [1]}))
    lake.replace_where("current", "things", pa.table({"id": [2]}), "true")
    table = lake.table("current", "things")
    [removed] = table.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)

    retention_passed(lake, "current", "things", 168)
    table = lake.table("current", "things")
    assert table.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False) == []
    assert not (tmp_path / "lake" / "current" / "things" / removed).exists()
    assert lake.properties("current", "things")["delta.deletedFileRetentionDuration"] == "interval 168 hours"
    lake.replace_where("current", "things", pa.table({"id": [3]}), "true")
    table = lake.table("current", "things")
    assert len(table.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False)) == 1
    assert lake.read("current", "things").column("id").to_pylist() == [3]
